"""The form fields of ``POST /v1/jobs`` turned into a validated job request, and the request's fingerprint.

The fingerprint (the video's SHA-256 and the validated fields, hashed) is what an
``Idempotency-Key`` is bound to: the same key with a different request is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from shared.messages import STAGES, StageName
from shared.options import OPTIONS_BY_STAGE, PresetName, resolve_options
from shared.options.base import explain_invalid_options
from web_server.models import JobCreate
from web_server.problems import ApiError


def parse_job_form(
    fields: dict[str, str], *, default_preset: PresetName = "standard"
) -> tuple[JobCreate, dict[str, dict[str, Any]]]:
    """Validate the form fields and resolve every stage's options.

    Args:
        fields: ``methods`` (``gs``, ``nerf`` or ``gs,nerf``; default ``gs``), ``preset``, ``name``,
            ``options`` (a JSON object of per-stage overrides), ``webhook_url``.
        default_preset: the preset when ``preset`` is absent or empty (the server's, from its training device).

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
            preset=fields.get("preset", "").strip() or default_preset,
            name=fields.get("name") or None,
            options=options,
            webhook_url=fields.get("webhook_url", "").strip() or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(422, "VALIDATION_ERROR", f"{where}: {first['msg']}") from exc
    stages: list[StageName] = ["sfm", *form.methods]
    check_option_stages(form.options, stages)
    resolved: dict[str, dict[str, Any]] = {}
    for stage in stages:
        try:
            resolved[stage] = resolve_options(stage, form.preset, form.options.get(stage)).model_dump(mode="json")
        except ValueError as exc:
            raise invalid_options(stage, exc) from exc
    return form, resolved


def check_option_stages(options: Collection[str], stages: Collection[str]) -> None:
    """Refuse overrides of stages that will not run: 422 ``INVALID_OPTIONS`` naming them."""
    extra = [k for k in options if k not in stages]
    if extra:
        raise ApiError(422, "INVALID_OPTIONS", f"options given for stages that will not run: {extra}.")


def invalid_options(stage: StageName, exc: ValueError) -> ApiError:
    """The 422 ``INVALID_OPTIONS`` for ``stage``'s refused options (a validation error explained field by field)."""
    if isinstance(exc, ValidationError):
        detail = explain_invalid_options(OPTIONS_BY_STAGE[stage], exc)
        return ApiError(422, "INVALID_OPTIONS", f"{stage} options: {detail}.")
    return ApiError(422, "INVALID_OPTIONS", f"{stage} options: {exc}")


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


def request_fingerprint(video_sha256: str, form: JobCreate) -> str:
    """The SHA-256 (hex) of an upload request: its video's SHA-256 and its validated form fields.

    Fields are compared as validated (``methods`` de-duplicated, ``options`` as parsed JSON with
    sorted keys), so the same request sent with other whitespace or field order matches.
    """
    fields: dict[str, Any] = {
        "video_sha256": video_sha256,
        "methods": form.methods,
        "preset": form.preset,
        "name": form.name,
        "options": form.options,
    }
    if form.webhook_url is not None:  # only when set: keys of uploads made before webhooks keep their fingerprint
        fields["webhook_url"] = form.webhook_url
    return canonical_sha256(fields)


def canonical_sha256(fields: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of ``fields`` as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
