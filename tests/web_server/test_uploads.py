"""Bad uploads are refused with a clear problem and leave no job, no file and no temp file behind."""

from __future__ import annotations

import json
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.options.gs import SplatOptions
from tests.fixtures.videos import cut, decode_bomb, encode_video
from tests.web_server.conftest import Server, live_server

#: Python memory an upload may use whatever its size (buffers of a few hundred kB, client included).
FLAT_BYTES = 8 * 1024 * 1024


def _nothing_created(server: Server) -> None:
    assert server.db.jobs.count_documents({}) == 0
    assert server.db["files.files"].count_documents({}) == 0
    assert server.broker.published == []
    uploads = server.settings.data_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_a_non_video_is_422_invalid_video_and_creates_no_job(server: Server) -> None:
    response = server.submit(b"%PDF-1.4 this is not a video" * 100)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "INVALID_VIDEO"
    assert "MP4" in problem["detail"]
    _nothing_created(server)


def test_a_truncated_video_is_invalid(server: Server, tiny_video: bytes) -> None:
    response = server.submit(tiny_video[: len(tiny_video) // 2])
    assert response.status_code == 422 and response.json()["code"] == "INVALID_VIDEO"
    _nothing_created(server)


def test_an_empty_video_and_an_empty_body_are_refused(server: Server) -> None:
    empty_file = server.submit(b"")
    assert empty_file.status_code == 422 and empty_file.json()["code"] == "INVALID_VIDEO"
    no_body = server.client.post(
        "/v1/jobs", headers={**server.auth(), "Content-Type": "multipart/form-data; boundary=x"}
    )
    assert no_body.status_code == 422
    not_multipart = server.client.post("/v1/jobs", headers=server.auth(), content=b"")
    assert not_multipart.status_code == 415 and not_multipart.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    _nothing_created(server)


def test_a_missing_video_field_is_422(server: Server) -> None:
    response = server.client.post("/v1/jobs", headers=server.auth(), files={"methods": (None, "gs")})
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert "video" in response.json()["detail"]
    _nothing_created(server)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"methods": "mesh"}, "VALIDATION_ERROR"),
        ({"methods": "gs,mesh"}, "VALIDATION_ERROR"),
        ({"preset": "ultra"}, "VALIDATION_ERROR"),
        ({"options": "{not json"}, "INVALID_OPTIONS"),
        ({"options": json.dumps({"gs": {"iterations": -5}})}, "INVALID_OPTIONS"),
        ({"options": json.dumps({"gs": {"no_such_option": 1}})}, "INVALID_OPTIONS"),
        ({"options": json.dumps({"nerf": {}}), "methods": "gs"}, "INVALID_OPTIONS"),
        ({"options": json.dumps({"mesh": {}})}, "INVALID_OPTIONS"),
        ({"colour": "red"}, "VALIDATION_ERROR"),
        ({"options": '{"gs": {"iterations": ' + "9" * 5000 + "}}"}, "INVALID_OPTIONS"),
        ({"options": '{"gs": ' + "[" * 1000 + "]" * 1000 + "}"}, "INVALID_OPTIONS"),
        ({"options": json.dumps({"sfm": {"seed": 2**70}})}, "INVALID_OPTIONS"),
        ({"options": '{"gs": {"grow_grad2d": Infinity}}'}, "INVALID_OPTIONS"),
        ({"options": '{"sfm": {"min_baseline_ratio": 1e999}}'}, "INVALID_OPTIONS"),
        ({"options": '{"nerf": {"n_voxels_final": 1000000000000}}', "methods": "nerf"}, "INVALID_OPTIONS"),
        ({"options": json.dumps({"sfm": {"max_num_features": 10**9, "num_threads": 10**6}})}, "INVALID_OPTIONS"),
    ],
)
def test_bad_form_fields_are_422_with_a_stable_code(
    server: Server, tiny_video: bytes, fields: dict[str, str], code: str
) -> None:
    response = server.submit(tiny_video, **fields)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    _nothing_created(server)


def test_an_out_of_range_option_is_refused_with_its_name_and_allowed_range(server: Server, tiny_video: bytes) -> None:
    response = server.submit(tiny_video, methods="nerf", options=json.dumps({"nerf": {"n_voxels_final": 10**12}}))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "nerf options: n_voxels_final" in detail
    assert f"at most {512**3}" in detail
    _nothing_created(server)


def test_valid_options_are_resolved_on_top_of_the_preset(server: Server, tiny_video: bytes) -> None:
    options = json.dumps({"gs": {"iterations": 123}})
    response = server.submit(tiny_video, methods="gs,nerf", preset="preview", options=options)
    assert response.status_code == 202, response.text
    stored = server.db.jobs.find_one({"_id": response.json()["id"]})
    assert stored["stages"]["gs"]["options"]["iterations"] == 123
    assert stored["stages"]["gs"]["options"]["max_long_side"] == SplatOptions.PRESETS["preview"]["max_long_side"]
    assert set(stored["stages"]) == {"sfm", "gs", "nerf"}
    assert stored["input"]["name"] == "input.mp4"


def _chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    head = (
        b'--XyZ\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    )
    yield head
    block = b"\0" * size
    sent = 0
    while sent < total:
        yield block
        sent += size
    yield b"\r\n--XyZ--\r\n"


def _post_streamed(server: Server, total: int) -> tuple[Any, int]:
    """POST a ``total``-byte video part over a real socket (the test client would buffer the body).

    Returns:
        The response and the peak traced Python memory (client and server share the process).
    """
    import httpx

    headers = {**server.auth(), "Content-Type": "multipart/form-data; boundary=XyZ"}
    with live_server(server.client.app) as base_url:
        tracemalloc.start()
        try:
            response = httpx.post(f"{base_url}/v1/jobs", headers=headers, content=_chunks(total), timeout=60)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return response, peak


def test_an_over_limit_upload_is_413_while_streaming_with_flat_memory(server: Server) -> None:
    sent = 16 * server.settings.max_upload_bytes  # 32 MB at a 2 MB limit, no Content-Length
    response, peak = _post_streamed(server, sent)
    assert response.status_code == 413
    assert response.json()["code"] == "VIDEO_TOO_LARGE"
    assert peak < FLAT_BYTES, f"peak Python memory {peak} bytes"
    _nothing_created(server)


@pytest.mark.slow
def test_a_large_upload_streams_to_disk_with_flat_memory(server_factory) -> None:
    server = server_factory(max_upload_bytes=64 * 1024 * 1024)
    response, peak = _post_streamed(server, 48 * 1024 * 1024)  # read in full, then refused by the probe
    assert response.status_code == 422 and response.json()["code"] == "INVALID_VIDEO"
    assert peak < FLAT_BYTES, f"peak Python memory {peak} bytes for a 48 MB upload"
    _nothing_created(server)


def test_a_declared_over_limit_length_is_refused_before_reading(server: Server) -> None:
    size = server.settings.max_upload_bytes * 2
    body = b"".join(_chunks(size))
    headers = {**server.auth(), "Content-Type": "multipart/form-data; boundary=XyZ", "Content-Length": str(len(body))}
    response = server.client.post("/v1/jobs", headers=headers, content=body)
    assert response.status_code == 413
    _nothing_created(server)


def test_a_retried_upload_with_the_same_idempotency_key_returns_the_first_job(
    server: Server, tiny_video: bytes
) -> None:
    headers = {**server.auth(), "Idempotency-Key": "upload-1"}
    files = {"video": ("clip.mp4", tiny_video, "video/mp4")}
    first = server.client.post("/v1/jobs", headers=headers, files=files)
    second = server.client.post("/v1/jobs", headers=headers, files=files)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert server.db.jobs.count_documents({}) == 1
    assert len(server.broker.requests_for("sfm")) == 1
    other = server.client.post("/v1/jobs", headers={**server.auth("bob"), "Idempotency-Key": "upload-1"}, files=files)
    assert other.json()["id"] != first.json()["id"]  # keys are per owner


def test_concurrent_uploads_each_get_a_job(server: Server, tiny_video: bytes) -> None:
    ids: list[str] = []

    def upload() -> None:
        ids.append(server.submit(tiny_video).json()["id"])

    threads = [threading.Thread(target=upload) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 3
    listed = server.client.get("/v1/jobs", headers=server.auth()).json()["items"]
    assert {j["id"] for j in listed} == set(ids)


def test_a_boundary_longer_than_rfc_2046_allows_is_422_not_500(server: Server, tiny_video: bytes) -> None:
    boundary = "b" * 300
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n'.encode()
        + tiny_video
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**server.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = server.client.post("/v1/jobs", headers=headers, content=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert "boundary" in response.json()["detail"]
    _nothing_created(server)


def test_a_body_without_its_closing_boundary_is_refused_as_cut_off(server: Server, tiny_video: bytes) -> None:
    body = b'--XyZ\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n' + tiny_video
    headers = {**server.auth(), "Content-Type": "multipart/form-data; boundary=XyZ"}
    response = server.client.post("/v1/jobs", headers=headers, content=body)
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert "cut off" in response.json()["detail"]
    _nothing_created(server)


def test_a_decode_bomb_is_refused_as_too_long_from_its_headers(server: Server, tmp_path: Path) -> None:
    bomb = decode_bomb(tmp_path / "bomb.mp4", 40_000)  # 16×16 frames, over the 36,000-frame default limit
    response = server.submit(bomb.read_bytes())
    assert response.status_code == 422
    assert response.json()["code"] == "VIDEO_TOO_LONG"
    assert "40000 frames" in response.json()["detail"]
    _nothing_created(server)


def test_the_frame_and_duration_limits_are_settings(server_factory: Any, tmp_path: Path) -> None:
    server = server_factory(max_video_frames=100, max_video_duration_s=2.0)
    too_many = server.submit(decode_bomb(tmp_path / "a.mkv", 101, fps=100).read_bytes())
    assert too_many.status_code == 422 and too_many.json()["code"] == "VIDEO_TOO_LONG"
    too_long = server.submit(decode_bomb(tmp_path / "b.mkv", 75, fps=25).read_bytes())  # 3 s
    assert too_long.status_code == 422 and too_long.json()["code"] == "VIDEO_TOO_LONG"
    _nothing_created(server)


@pytest.mark.parametrize(("suffix", "encoder"), [(".webm", "libvpx-vp9"), (".mkv", "libx264"), (".mp4", "libx264")])
def test_a_truncated_upload_in_any_container_is_refused_with_the_send_again_hint(
    server: Server, tmp_path: Path, suffix: str, encoder: str
) -> None:
    full = encode_video(tmp_path / f"clip{suffix}", encoder, 60, gop=10)
    response = server.submit(cut(full, 0.4).read_bytes())
    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_VIDEO"
    assert "send the complete file again" in response.json()["detail"]
    _nothing_created(server)


def test_the_same_idempotency_key_with_another_video_or_other_fields_is_422_key_reused(
    server: Server, tiny_video: bytes, tmp_path: Path
) -> None:
    headers = {**server.auth(), "Idempotency-Key": "upload-2"}
    options = {"gs": {"iterations": 300, "sh_degree": 1}}

    def post(video: bytes, **fields: str) -> Any:
        files = {"video": ("clip.mp4", video, "video/mp4")}
        return server.client.post("/v1/jobs", headers=headers, files=files, data=fields)

    first = post(tiny_video, options=json.dumps(options))
    assert first.status_code == 202
    other_video = encode_video(tmp_path / "other.mp4", "libx264", 12).read_bytes()
    for response in (
        post(other_video, options=json.dumps(options)),
        post(tiny_video, options=json.dumps(options), methods="gs,nerf"),
        post(tiny_video),
    ):
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    reordered = json.dumps({"gs": {"sh_degree": 1, "iterations": 300}}, indent=2)  # same options, other text
    same = post(tiny_video, options=reordered)
    assert same.status_code == 202 and same.json()["id"] == first.json()["id"]
    assert server.db.jobs.count_documents({}) == 1
    assert server.db["files.files"].count_documents({}) == 1
    assert len(server.broker.requests_for("sfm")) == 1


def test_a_failure_after_the_video_reached_gridfs_leaves_no_file_and_no_job(
    server: Server, tiny_video: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []

    def failing_insert(doc: dict, now: Any) -> None:
        seen.append((server.db["files.files"].count_documents({}), server.db["files.chunks"].count_documents({})))
        raise RuntimeError("the job insert failed")

    monkeypatch.setattr(server.orchestrator, "create_job", failing_insert)
    with pytest.raises(RuntimeError, match="the job insert failed"):  # the test client re-raises the 500's cause
        server.submit(tiny_video)
    assert seen == [(1, 1)]  # the file was complete in GridFS when the insert failed
    assert server.db["files.files"].count_documents({}) == 0
    assert server.db["files.chunks"].count_documents({}) == 0
    _nothing_created(server)
