"""Receiving ``POST /v1/jobs``: the multipart body parsed as it streams in, the video part written
straight to a temporary file with the size limit enforced on the way (memory stays flat for any
size), the small form fields kept in memory, and the fields turned into a validated job request.

FastAPI's ``UploadFile`` is not used on purpose: it spools the whole body before the handler runs,
so a limit could only be checked after the fact.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from shared.messages import STAGES
from shared.options import OPTIONS_BY_STAGE, resolve_options
from shared.options.base import explain_invalid_options
from web_server.models import JobCreate
from web_server.problems import ApiError

FORM_FIELDS = ("methods", "preset", "name", "options")
VIDEO_FIELD = "video"
MAX_FIELD_BYTES = 64 * 1024
#: The longest multipart boundary (RFC 2046, section 5.1.1).
MAX_BOUNDARY_CHARS = 70
#: Slack above the video limit for the multipart framing and the small fields.
FORM_OVERHEAD_BYTES = 1024 * 1024
_FLUSH = 256 * 1024


class UploadTooLargeError(Exception):
    """The video part passed the limit."""


@dataclass
class ReceivedUpload:
    """A parsed upload: the form fields and the video written to ``video_path``."""

    fields: dict[str, str] = field(default_factory=dict)
    video_path: Path | None = None
    video_bytes: int = 0


class _PartCollector:
    """Multipart callbacks: routes each part's bytes to a field buffer or the video file buffer."""

    def __init__(self, video_path: Path, max_video_bytes: int) -> None:
        self.video_path = video_path
        self.max_video_bytes = max_video_bytes
        self.result = ReceivedUpload()
        self.pending = bytearray()  # video bytes not yet flushed to the file
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name: str | None = None
        self._field = bytearray()
        self.closed = False  # the closing boundary was seen

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._field = bytearray()

    def _header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        kind, params = parse_options_header(self._headers.get("content-disposition"))
        name = params.get(b"name")
        if kind != b"form-data" or name is None:
            raise ApiError(422, "VALIDATION_ERROR", "Every part needs 'Content-Disposition: form-data; name=...'.")
        self._name = name.decode("utf-8", "replace")
        if self._name not in (*FORM_FIELDS, VIDEO_FIELD):
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                f"Unknown form field {self._name!r}; send 'video' and optionally {', '.join(FORM_FIELDS)}.",
            )
        if self._name in self.result.fields or (self._name == VIDEO_FIELD and self.result.video_path is not None):
            raise ApiError(422, "VALIDATION_ERROR", f"The form field {self._name!r} was sent twice.")
        if self._name == VIDEO_FIELD:
            self.result.video_path = self.video_path

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name == VIDEO_FIELD:
            self.result.video_bytes += end - start
            if self.result.video_bytes > self.max_video_bytes:
                raise UploadTooLargeError
            self.pending.extend(data[start:end])
        else:
            self._field.extend(data[start:end])
            if len(self._field) > MAX_FIELD_BYTES:
                raise ApiError(
                    422, "VALIDATION_ERROR", f"The form field {self._name!r} is over {MAX_FIELD_BYTES} bytes."
                )

    def _part_end(self) -> None:
        if self._name is not None and self._name != VIDEO_FIELD:
            self.result.fields[self._name] = self._field.decode("utf-8", "replace")

    def _end(self) -> None:
        self.closed = True


def too_large(max_bytes: int) -> ApiError:
    """413 ``VIDEO_TOO_LARGE``."""
    return ApiError(
        413,
        "VIDEO_TOO_LARGE",
        f"The video is larger than the limit of {max_bytes} bytes. Trim it or lower its resolution, then upload it again.",
    )


async def receive_upload(request: Request, upload_dir: Path, max_video_bytes: int) -> ReceivedUpload:
    """Parse the request body as it arrives.

    Args:
        request: the ``multipart/form-data`` request.
        upload_dir: where the video's temporary file goes (created if missing).
        max_video_bytes: the largest video accepted.

    Returns:
        The fields and the temporary video file (the caller deletes it). Raises :class:`ApiError`:
        415 for another content type, 413 ``VIDEO_TOO_LARGE`` (as soon as the limit is passed, the
        partial file deleted), 422 for a malformed body.
    """
    kind, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the upload as multipart/form-data.")
    if len(boundary) > MAX_BOUNDARY_CHARS:
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            f"The multipart boundary is {len(boundary)} characters long; at most {MAX_BOUNDARY_CHARS} are allowed "
            "(RFC 2046). Let your HTTP client choose the boundary.",
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_video_bytes + FORM_OVERHEAD_BYTES:
        raise too_large(max_video_bytes)
    upload_dir.mkdir(parents=True, exist_ok=True)
    video_path = upload_dir / f"{uuid.uuid4().hex}.part"
    collector = _PartCollector(video_path, max_video_bytes)
    parser = MultipartParser(boundary, collector.callbacks())
    try:
        with video_path.open("wb") as out:
            async for chunk in request.stream():
                parser.write(chunk)
                if len(collector.pending) >= _FLUSH:
                    await run_in_threadpool(out.write, bytes(collector.pending))
                    collector.pending.clear()
            parser.finalize()
            if not collector.closed:
                raise ApiError(
                    422,
                    "VALIDATION_ERROR",
                    "The multipart body ends before its closing boundary: the upload was cut off. Send it again.",
                )
            if collector.pending:
                await run_in_threadpool(out.write, bytes(collector.pending))
    except UploadTooLargeError:
        video_path.unlink(missing_ok=True)
        raise too_large(max_video_bytes) from None
    except FormParserError as exc:
        video_path.unlink(missing_ok=True)
        raise ApiError(422, "VALIDATION_ERROR", f"The multipart body is malformed: {exc}") from exc
    except BaseException:
        video_path.unlink(missing_ok=True)
        raise
    if collector.result.video_path is None:
        video_path.unlink(missing_ok=True)
    return collector.result


def parse_job_form(fields: dict[str, str]) -> tuple[JobCreate, dict[str, dict[str, Any]]]:
    """Validate the form fields and resolve every stage's options.

    Args:
        fields: ``methods`` (``gs``, ``nerf`` or ``gs,nerf``; default ``gs``), ``preset``, ``name``,
            ``options`` (a JSON object of per-stage overrides).

    Returns:
        The job request and, per stage to run (``sfm`` first), its resolved options as JSON.
        Raises 422 ``VALIDATION_ERROR`` for bad fields, 422 ``INVALID_OPTIONS`` for bad options.
    """
    raw_methods = [m.strip() for m in fields.get("methods", "gs").split(",") if m.strip()]
    options = _parse_options_json(fields.get("options", ""))
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ApiError(
            422, "INVALID_OPTIONS", 'options must be a JSON object of objects, e.g. {"gs": {"iterations": 3000}}.'
        )
    unknown = [k for k in options if k not in STAGES]
    if unknown:
        raise ApiError(422, "INVALID_OPTIONS", f"options names unknown stages {unknown}; use {', '.join(STAGES)}.")
    try:
        form = JobCreate(
            methods=list(dict.fromkeys(raw_methods)),
            preset=fields.get("preset", "standard").strip() or "standard",
            name=fields.get("name") or None,
            options=options,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(422, "VALIDATION_ERROR", f"{where}: {first['msg']}") from exc
    stages = ["sfm", *form.methods]
    extra = [k for k in form.options if k not in stages]
    if extra:
        raise ApiError(422, "INVALID_OPTIONS", f"options given for stages that will not run: {extra}.")
    resolved: dict[str, dict[str, Any]] = {}
    for stage in stages:
        try:
            resolved[stage] = resolve_options(stage, form.preset, form.options.get(stage)).model_dump(mode="json")
        except ValidationError as exc:
            detail = explain_invalid_options(OPTIONS_BY_STAGE[stage], exc)
            raise ApiError(422, "INVALID_OPTIONS", f"{stage} options: {detail}.") from exc
        except ValueError as exc:
            raise ApiError(422, "INVALID_OPTIONS", f"{stage} options: {exc}") from exc
    return form, resolved


def _parse_options_json(text: str) -> Any:
    """The ``options`` field parsed as JSON; 422 ``INVALID_OPTIONS`` for anything Python refuses to parse.

    Besides syntax errors that covers integers longer than Python's 4,300-digit conversion limit
    (``ValueError``) and nesting too deep for the decoder (``RecursionError``).
    """
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(422, "INVALID_OPTIONS", f"options is not valid JSON: {exc}") from exc
    except ValueError as exc:  # an integer over Python's 4,300-digit conversion limit
        raise ApiError(
            422, "INVALID_OPTIONS", "options holds an integer of more than 4300 digits; no option takes such a value."
        ) from exc
    except RecursionError as exc:
        raise ApiError(
            422, "INVALID_OPTIONS", 'options is nested too deeply; send a flat object per stage, e.g. {"gs": {...}}.'
        ) from exc
