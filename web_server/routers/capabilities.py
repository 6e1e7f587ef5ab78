"""``GET /v1/capabilities``: what the training workers run on and the default preset that follows from it."""

from __future__ import annotations

from fastapi import APIRouter

from shared.options.base import PRESET_NAMES, default_preset_for
from web_server.capabilities import training_device
from web_server.deps import OwnerDep, SettingsDep, StoreDep
from web_server.models import Capabilities
from web_server.problems import Problem

router = APIRouter(prefix="/v1", tags=["capabilities"])


@router.get("/capabilities", response_model=Capabilities, responses={401: {"model": Problem}})
def get_capabilities(_owner: OwnerDep, settings: SettingsDep, store: StoreDep) -> Capabilities:
    """The training device, the default preset and why (the web page preselects it), the presets and methods."""
    device = training_device(settings, store)
    preset, reason = default_preset_for(device)
    return Capabilities(
        training_device=device or "unknown",
        default_preset=preset,
        reason=reason,
        presets=list(PRESET_NAMES),
        methods=["gs", "nerf"],
    )
