"""Stage options and presets; :data:`OPTIONS_BY_STAGE` is the registry the server validates against."""

from __future__ import annotations

from typing import Any

from shared.messages import StageName
from shared.options.base import PRESET_NAMES, DeviceClass, PresetName, StageOptions, default_preset_for
from shared.options.gs import SplatOptions
from shared.options.nerf import TensorfOptions
from shared.options.sfm import SfmOptions

OPTIONS_BY_STAGE: dict[StageName, type[StageOptions]] = {
    "sfm": SfmOptions,
    "gs": SplatOptions,
    "nerf": TensorfOptions,
}


def resolve_options(stage: StageName, preset: PresetName, overrides: dict[str, Any] | None) -> StageOptions:
    """A stage's options: the preset with ``overrides`` on top. Raises ``ValueError`` when invalid."""
    return OPTIONS_BY_STAGE[stage].from_preset(preset, **(overrides or {}))


__all__ = [
    "OPTIONS_BY_STAGE",
    "PRESET_NAMES",
    "DeviceClass",
    "PresetName",
    "SfmOptions",
    "SplatOptions",
    "StageOptions",
    "TensorfOptions",
    "default_preset_for",
    "resolve_options",
]
