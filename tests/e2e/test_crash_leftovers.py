"""A web server killed (SIGKILL) mid-upload leaves nothing behind once it is restarted.

Two uploads are cut by the kill: a user's video (a ``.part`` temp file) and a worker's artifact
(GridFS chunks without a files document); a file whose job was never written is there too. After a
restart the janitor's start-up pass removes them all, and keeps the job's own input. (Worker scratch
left by a killed worker process: ``tests/consumer/test_worker_stop_and_crash.py``.)
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest

from tests.e2e.conftest import start_stack
from tests.e2e.stack import ServiceStack, tiny_options
from web_server.store import Store

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(600)]

MIB = 1024 * 1024
SENT_BYTES = 3 * MIB
BOUNDARY = "crashtestboundary"


def _stalled_body(head: bytes, gate: threading.Event) -> Iterator[bytes]:
    """``head``, then :data:`SENT_BYTES` of noise, then nothing until ``gate`` is set."""
    yield head
    for _ in range(SENT_BYTES // MIB):
        yield os.urandom(MIB)
    gate.wait(120)
    yield b"never seen"


def _send_in_background(method: str, url: str, headers: dict[str, str], body: Iterator[bytes]) -> threading.Thread:
    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
            httpx.request(method, url, headers=headers, content=body, timeout=120)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _leftovers(store: Store, uploads: Path, job_input: Any) -> dict[str, int]:
    """Bytes of temp files, of chunks without a files document, and of files no job references."""
    complete = {d["_id"]: d for d in store.file_docs.find({}, {"_id": 1, "length": 1})}
    orphan_chunks = sum(len(c["data"]) for c in store.chunk_docs.find({"files_id": {"$nin": list(complete)}}))
    referenced = {job_input}
    for job in store.jobs.find({}, {"stages": 1}):
        for stage in job["stages"].values():
            referenced.update(a["file_id"] for a in stage.get("artifacts") or [])
    unreferenced = sum(int(d["length"]) for file_id, d in complete.items() if file_id not in referenced)
    parts = sum(p.stat().st_size for p in uploads.glob("*.part")) if uploads.is_dir() else 0
    return {"part_files": parts, "orphan_chunks": orphan_chunks, "unreferenced_files": unreferenced}


def test_server_killed_mid_upload_leaves_no_bytes_behind_after_its_restart(
    rabbitmq_url: str, e2e_mongo_url: str, e2e_video: Path, tmp_path: Path
) -> None:
    from tests.fixtures.rabbitmq import delete_topology

    stack = ServiceStack(tmp_path, e2e_mongo_url, rabbitmq_url)
    mongo: pymongo.MongoClient[Any] = pymongo.MongoClient(e2e_mongo_url, tz_aware=True)
    store = Store(mongo[stack.db_name])
    uploads = tmp_path / "data" / "web_server" / "uploads"
    gate = threading.Event()
    try:
        start_stack(stack, ())
        with stack.client() as client:
            job = client.submit(e2e_video, preset="preview", options=tiny_options(), name="kept")
        worker = {"Authorization": f"Bearer {stack.worker_token}"}
        claim = httpx.post(
            f"{stack.url}/internal/v1/jobs/{job.id}/stages/sfm/claim",
            json={"message_id": "m-1", "attempt": 1, "worker_id": "crash-test"},
            headers=worker,
        )
        assert claim.status_code == 200, claim.text
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="video"; filename="v.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
        video_headers = {
            "Authorization": f"Bearer {stack.api_key}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        }
        artifact_headers = {
            **worker,
            "X-Lease-Id": claim.json()["lease_id"],
            "X-Content-SHA256": "0" * 64,
            "Content-Type": "application/octet-stream",
        }
        senders = [
            _send_in_background("POST", f"{stack.url}/v1/jobs", video_headers, _stalled_body(head, gate)),
            _send_in_background(
                "PUT",
                f"{stack.url}/internal/v1/jobs/{job.id}/stages/sfm/artifacts/sfm.tar",
                artifact_headers,
                _stalled_body(b"", gate),
            ),
        ]
        ghost = store.open_upload("input.mp4", {"job_id": "never-written", "name": "input.mp4"})
        ghost.write(os.urandom(MIB))
        ghost.close()  # a file whose job insert never happened

        job_doc = store.jobs.find_one({"_id": job.id})
        assert job_doc is not None
        input_id = job_doc["input"]["file_id"]
        deadline = time.monotonic() + 60
        while True:
            before = _leftovers(store, uploads, input_id)
            # Both servers keep the last partial chunk in memory: at least 2 of the 3 MiB are on disk.
            if before["part_files"] >= 2 * MIB and before["orphan_chunks"] >= 2 * MIB:
                break
            assert time.monotonic() < deadline, (before, stack.logs())
            time.sleep(0.2)
        assert stack.server is not None
        stack.server.kill()
        killed = _leftovers(store, uploads, input_id)  # the upload writes GridFS chunks as it receives, up to the kill
        assert killed["part_files"] >= before["part_files"] and killed["orphan_chunks"] >= before["orphan_chunks"]
        gate.set()
        for sender in senders:
            sender.join(30)
        assert _leftovers(store, uploads, input_id) == killed  # nothing cleans up after a SIGKILL

        stack.server.env["VID2SCENE_JANITOR_MIN_AGE_S"] = "1"
        time.sleep(1.5)  # every leftover is older than the minimum age now
        stack.start_server()
        deadline = time.monotonic() + 60
        while (after := _leftovers(store, uploads, input_id)) != {
            "part_files": 0,
            "orphan_chunks": 0,
            "unreferenced_files": 0,
        }:
            assert time.monotonic() < deadline, (after, stack.logs())
            time.sleep(0.2)
        assert list(uploads.iterdir()) == []
        assert store.file_docs.count_documents({"_id": input_id}) == 1  # the job's own input stays
        with stack.client() as client:
            assert client.get(job.id).id == job.id
    finally:
        gate.set()
        stack.stop()
        mongo.drop_database(stack.db_name)
        mongo.close()
        delete_topology(rabbitmq_url, stack.queue_prefix)
