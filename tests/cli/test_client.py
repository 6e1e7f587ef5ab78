"""The API client's protocol handling: problem+json errors, streamed multipart uploads, resumed downloads, SSE.

The server side here is an ``httpx.MockTransport`` handler that speaks the documented HTTP contract;
the client against the real server is covered in ``tests/e2e``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from vid2scene.client import JobView, ServerError, Vid2SceneClient

JOB = {
    "id": "j1",
    "status": "running",
    "methods": ["gs"],
    "preset": "preview",
    "stages": {
        "sfm": {"status": "succeeded", "progress": 1.0, "message": "done", "attempt": 1, "metrics": {}, "error": None},
        "gs": {
            "status": "running",
            "progress": 0.25,
            "message": "step 100",
            "attempt": 2,
            "metrics": {},
            "error": None,
        },
    },
    "artifacts": [],
}


def _client(handler) -> Vid2SceneClient:
    return Vid2SceneClient("http://test", api_key="k", transport=httpx.MockTransport(handler))


def _problem(status: int, code: str, detail: str) -> httpx.Response:
    body = {"type": "about:blank", "title": "x", "status": status, "code": code, "detail": detail}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


def test_problem_json_answer_becomes_api_error_with_its_code_and_detail() -> None:
    client = _client(lambda request: _problem(422, "INVALID_VIDEO", "not a video: no video stream"))
    with pytest.raises(ServerError) as info:
        client.get("j1")
    assert (info.value.status, info.value.code) == (422, "INVALID_VIDEO")
    assert info.value.message == "not a video: no video stream"


def test_unreachable_server_is_an_api_error_with_code_server_unreachable() -> None:
    client = Vid2SceneClient("http://127.0.0.1:9", timeout_s=1.0)
    with pytest.raises(ServerError) as info:
        client.get("j1")
    assert info.value.code == "SERVER_UNREACHABLE"


def test_every_call_sends_the_api_key_as_bearer_token() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json=JOB)

    _client(handler).get("j1")
    assert seen == ["Bearer k"]


def test_job_with_stages_keyed_by_name_parses_into_named_stage_list() -> None:
    job = JobView.model_validate(JOB)
    assert [s.name for s in job.stages] == ["sfm", "gs"]
    assert job.stage("gs").attempt == 2
    assert not job.done


def test_submit_streams_a_multipart_body_with_fields_file_and_exact_length(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    payload = bytes(range(256)) * 9000  # 2.3 MB: several chunks
    video.write_bytes(payload)
    captured: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.read()
        captured["length"] = int(request.headers["Content-Length"])
        captured["body"] = body
        captured["type"] = request.headers["Content-Type"]
        captured["idem"] = request.headers.get("Idempotency-Key")
        return httpx.Response(202, json={**JOB, "status": "queued"})

    progress: list[tuple[int, int | None]] = []
    job = _client(handler).submit(
        video,
        methods=("gs", "nerf"),
        preset="preview",
        options={"gs": {"iterations": 10}},
        name="garden",
        idempotency_key="abc",
        on_bytes=lambda done, total: progress.append((done, total)),
    )
    body = captured["body"]
    assert job.status == "queued"
    assert captured["length"] == len(body)
    assert captured["idem"] == "abc"
    boundary = str(captured["type"]).split("boundary=")[1].encode()
    parts = body.split(b"--" + boundary)
    fields = {}
    for part in parts[1:-1]:
        head, _, value = part.partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        fields[name] = value[:-2]  # the CRLF before the next boundary
    assert fields["methods"] == b"gs,nerf"
    assert fields["preset"] == b"preview"
    assert json.loads(fields["options"]) == {"gs": {"iterations": 10}}
    assert fields["name"] == b"garden"
    assert fields["video"] == payload
    assert progress[-1] == (len(payload), len(payload))
    assert len(progress) >= 3


def _range_server(data: bytes, seen_ranges: list[str | None], *, honour_range: bool = True):
    def handler(request: httpx.Request) -> httpx.Response:
        header = request.headers.get("Range")
        seen_ranges.append(header)
        if header and honour_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return httpx.Response(416, headers={"Content-Range": f"bytes */{len(data)}"})
            return httpx.Response(
                206,
                content=data[start:],
                headers={"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"},
            )
        return httpx.Response(200, content=data)

    return handler


def test_download_resumes_a_partial_file_with_a_range_request(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4000
    dest = tmp_path / "scene.ply"
    dest.with_name("scene.ply.part").write_bytes(data[:300_000])
    ranges: list[str | None] = []
    path = _client(_range_server(data, ranges)).download("j1", "scene.ply", dest)
    assert ranges == ["bytes=300000-"]
    assert path.read_bytes() == data
    assert not dest.with_name("scene.ply.part").exists()


def test_download_starts_over_when_the_server_ignores_the_range(tmp_path: Path) -> None:
    data = b"0123456789" * 1000
    dest = tmp_path / "scene.splat"
    dest.with_name("scene.splat.part").write_bytes(b"garbage")
    ranges: list[str | None] = []
    _client(_range_server(data, ranges, honour_range=False)).download("j1", "scene.splat", dest)
    assert dest.read_bytes() == data


def test_download_of_an_already_whole_part_file_just_renames_it(tmp_path: Path) -> None:
    data = b"x" * 1000
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(data)
    _client(_range_server(data, [])).download("j1", "a.bin", dest)
    assert dest.read_bytes() == data


def test_wait_follows_server_sent_events_until_the_job_ends() -> None:
    snapshots = [{**JOB, "status": "running"}, {**JOB, "status": "running"}, {**JOB, "status": "succeeded"}]
    stream = "".join(f"event: job\ndata: {json.dumps(s)}\n\n" for s in snapshots) + ": keep-alive\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/jobs/j1/events"
        return httpx.Response(200, content=stream.encode(), headers={"Content-Type": "text/event-stream"})

    updates: list[str] = []
    job = _client(handler).wait("j1", on_update=lambda j: updates.append(j.status))
    assert job.status == "succeeded"
    assert updates == ["running", "running", "succeeded"]


def test_wait_polls_the_job_when_the_event_stream_closes_early() -> None:
    polls = iter(["running", "failed"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, content=f"data: {json.dumps(JOB)}\n\n".encode())
        return httpx.Response(200, json={**JOB, "status": next(polls)})

    job = _client(handler).wait("j1", poll_s=0.01)
    assert job.status == "failed"


def test_wait_with_timeout_raises_timeout_error_while_the_job_still_runs() -> None:
    client = _client(lambda request: httpx.Response(200, json=JOB))
    with pytest.raises(TimeoutError):
        client.wait("j1", timeout_s=0.05, poll_s=0.01)
