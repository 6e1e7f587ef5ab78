"""The local mode's SecantusDB child process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import skip_or_fail
from vid2scene.embedded_mongo import EmbeddedMongo, secantus_available


def test_embedded_secantus_stores_documents_across_a_restart(tmp_path: Path) -> None:
    if not secantus_available():
        skip_or_fail("the 'local' extra (secantusdb) is not installed")
    import pymongo

    with EmbeddedMongo(tmp_path / "db", log_path=tmp_path / "db.log") as mongo:
        with pymongo.MongoClient[dict[str, Any]](mongo.url) as client:
            client.t.jobs.insert_one({"_id": "j1", "status": "queued"})
        first_port = mongo.port
    with EmbeddedMongo(tmp_path / "db") as mongo, pymongo.MongoClient[dict[str, Any]](mongo.url) as client:
        assert client.t.jobs.find_one({"_id": "j1"}) == {"_id": "j1", "status": "queued"}
    assert first_port > 0


def test_stopped_embedded_secantus_no_longer_answers(tmp_path: Path) -> None:
    if not secantus_available():
        skip_or_fail("the 'local' extra (secantusdb) is not installed")
    import pymongo

    mongo = EmbeddedMongo(":memory:")
    url = mongo.start()
    mongo.stop()
    mongo.stop()  # twice is harmless
    with (
        pytest.raises(pymongo.errors.PyMongoError),
        pymongo.MongoClient[dict[str, Any]](url, serverSelectionTimeoutMS=300) as c,
    ):
        c.admin.command("ping")
