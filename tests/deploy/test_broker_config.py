"""The broker config raises the consumer timeout above the longest stage and is mounted where RabbitMQ reads
it; the MongoDB init script gets the variables it reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.deploy.deployfiles import REPO_ROOT

Models = dict[tuple[Path, ...], Any]
BROKER_CONFIG = REPO_ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf"
DAY_MS = 24 * 3600 * 1000


def _config() -> dict[str, str]:
    pairs = {}
    for raw in BROKER_CONFIG.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _service(model: dict[str, Any], image_prefix: str) -> dict[str, Any]:
    matches = [s for s in model["services"].values() if str(s.get("image", "")).startswith(image_prefix)]
    assert len(matches) == 1, f"one {image_prefix} service expected"
    return matches[0]


def test_broker_config_sets_a_consumer_timeout_of_at_least_a_day() -> None:
    assert int(_config()["consumer_timeout"]) >= DAY_MS


def test_broker_config_is_mounted_read_only_where_the_rabbitmq_image_reads_it(resolved_models: Models) -> None:
    rabbitmq = _service(resolved_models[(REPO_ROOT / "docker-compose.yml",)], "rabbitmq:")
    mounts = [v for v in rabbitmq["volumes"] if v["type"] == "bind" and Path(v["source"]) == BROKER_CONFIG]
    assert len(mounts) == 1
    target = mounts[0]["target"]
    assert target == "/etc/rabbitmq/rabbitmq.conf" or re.fullmatch(r"/etc/rabbitmq/conf\.d/[\w.-]+\.conf", target)
    assert mounts[0]["read_only"]


def test_management_ui_is_published_on_loopback_only(resolved_models: Models) -> None:
    rabbitmq = _service(resolved_models[(REPO_ROOT / "docker-compose.yml",)], "rabbitmq:")
    management = int(_config()["management.tcp.port"])
    published = [p for p in rabbitmq.get("ports", []) if int(p["target"]) == management]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published)


def test_the_broker_user_of_the_services_is_the_one_rabbitmq_creates(resolved_models: Models) -> None:
    model = resolved_models[(REPO_ROOT / "docker-compose.yml",)]
    rabbitmq = _service(model, "rabbitmq:")["environment"]
    credentials = f"{rabbitmq['RABBITMQ_DEFAULT_USER']}:{rabbitmq['RABBITMQ_DEFAULT_PASS']}@"
    urls = [s["environment"]["VID2SCENE_AMQP_URL"] for s in model["services"].values() if s.get("build")]
    assert urls and all(credentials in url for url in urls)


def test_mongo_init_scripts_are_mounted_and_get_every_variable_they_read(resolved_models: Models) -> None:
    mongo = _service(resolved_models[(REPO_ROOT / "docker-compose.yml",)], "mongo:")
    scripts = [
        v for v in mongo["volumes"] if v["type"] == "bind" and v["target"].startswith("/docker-entrypoint-initdb.d/")
    ]
    assert scripts
    for script in scripts:
        needed = set(re.findall(r"process\.env\.(\w+)", Path(script["source"]).read_text()))
        assert needed <= set(mongo["environment"]), sorted(needed - set(mongo["environment"]))


def test_the_web_servers_mongo_account_is_the_one_the_init_script_creates(resolved_models: Models) -> None:
    model = resolved_models[(REPO_ROOT / "docker-compose.yml",)]
    mongo = _service(model, "mongo:")["environment"]
    urls = [
        s["environment"]["VID2SCENE_MONGO_URL"]
        for s in model["services"].values()
        if "VID2SCENE_MONGO_URL" in s.get("environment", {})
    ]
    assert urls
    for url in urls:
        assert f"{mongo['MONGO_APP_USER']}:{mongo['MONGO_APP_PASSWORD']}@" in url
        assert url.endswith(f"authSource={mongo['MONGO_APP_DB']}")
