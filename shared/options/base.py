"""Typed, frozen stage options with named presets.

Each stage's options live in ``shared.options.<stage>`` (not in the worker) because the web server
validates a job's ``options`` against them at upload time and must not import a worker.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict

PresetName = Literal["preview", "standard", "high"]
PRESET_NAMES: tuple[PresetName, ...] = ("preview", "standard", "high")


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
