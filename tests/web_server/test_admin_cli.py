"""``python -m web_server keys ...``: create, list and revoke API keys."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from web_server.api_keys import owner_for_token
from web_server.store import Store


def _run(mongo_url: str, db_name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VID2SCENE_MONGO_URL": mongo_url, "VID2SCENE_MONGO_DB": db_name, "VID2SCENE_MODE": "local"}
    return subprocess.run(
        [sys.executable, "-m", "web_server", *args], env=env, capture_output=True, text=True, check=False, timeout=60
    )


def test_keys_create_list_and_revoke(mongo_url: str, mongo_db: Any) -> None:
    created = _run(mongo_url, mongo_db.name, "keys", "create", "--owner", "dana")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    store = Store(mongo_db)
    assert owner_for_token(store, token) == "dana"
    listed = _run(mongo_url, mongo_db.name, "keys", "list")
    (line,) = listed.stdout.strip().splitlines()
    key_id, owner, _created, state = line.split("\t")
    assert (owner, state) == ("dana", "active")
    assert token not in listed.stdout
    revoked = _run(mongo_url, mongo_db.name, "keys", "revoke", key_id)
    assert revoked.returncode == 0
    assert owner_for_token(store, token) is None
    assert _run(mongo_url, mongo_db.name, "keys", "revoke", key_id).returncode == 1
