"""Typed, frozen stage options with named presets.

Each stage's options live in ``shared.options.<stage>`` (not in the worker) because the web server
validates a job's ``options`` against them at upload time and must not import a worker.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict

PresetName = Literal["preview", "standard", "high"]
PRESET_NAMES: tuple[PresetName, ...] = ("preview", "standard", "high")
#: What trains the splats and the radiance field: a CUDA GPU or the CPU.
DeviceClass = Literal["cuda", "cpu"]


def default_preset_for(device: DeviceClass | None) -> tuple[PresetName, str]:
    """The preset to use when none is asked for, and why: the one rule for the CLI, the local mode and the server.

    Args:
        device: the training device class, or None when it is not known (no training worker reported yet).

    Returns:
        ``(preset, reason)``: ``standard`` on a CUDA GPU (gsplat's 7k-step recipe), ``preview`` on the CPU (sized
        to finish a phone clip in minutes), ``standard`` when unknown; the reason is a sentence for the user.
    """
    if device == "cuda":
        return "standard", "a CUDA GPU trains the scenes: the 'standard' preset"
    if device == "cpu":
        return (
            "preview",
            "no GPU here, training runs on the CPU: the 'preview' preset (standard takes many times longer)",
        )
    return "standard", "no training worker has reported its device yet: the 'standard' preset"


class StageOptions(BaseModel):
    """Base class: frozen, unknown fields rejected, presets in :attr:`PRESETS`.

    A subclass declares every field with its ``standard`` default and a docstring-like
    ``description``, and lists in ``PRESETS`` what each named preset changes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"preview": {}, "standard": {}, "high": {}}

    @classmethod
    def from_preset(cls, preset: PresetName = "standard", **overrides: Any) -> Self:
        """The options of a named preset, with ``overrides`` applied on top (validated).

        Example:
            >>> from shared.options.sfm import SfmOptions
            >>> SfmOptions.from_preset("preview", seed=3).seed
            3
        """
        if preset not in cls.PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(cls.PRESETS)}")
        return cls.model_validate({**cls.PRESETS[preset], **overrides})
