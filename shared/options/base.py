"""Typed, frozen stage options with named presets.

Each stage's options live in ``shared.options.<stage>`` (not in the worker) because the web server
validates a job's ``options`` against them at upload time and must not import a worker.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

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


#: The largest seed: a signed 32-bit integer, which COLMAP, NumPy, PyTorch and MongoDB all accept.
MAX_SEED = 2**31 - 1
#: How much of a refused value an error message repeats.
_SHOWN_INPUT_CHARS = 40


class StageOptions(BaseModel):
    """Base class: frozen, unknown fields rejected, presets in :attr:`PRESETS`.

    A subclass declares every field with its ``standard`` default and a docstring-like
    ``description``, and lists in ``PRESETS`` what each named preset changes. Every number is
    finite (``inf`` and ``nan`` are refused) and every numeric field declares an upper bound that
    a worker can honour (``le``/``lt``, or ``max_length`` for a schedule), so a job is refused at
    upload rather than failing after SfM.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

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


def allowed_range(field: FieldInfo) -> str | None:
    """The bounds a field declares, in words (``"at least 1 and at most 200000"``); None without bounds."""
    words = (
        (annotated_types.Ge, "ge", "at least {}"),
        (annotated_types.Gt, "gt", "more than {}"),
        (annotated_types.Le, "le", "at most {}"),
        (annotated_types.Lt, "lt", "less than {}"),
        (annotated_types.MaxLen, "max_length", "at most {} entries"),
    )
    parts = [
        template.format(getattr(item, attribute))
        for item in field.metadata
        for kind, attribute, template in words
        if isinstance(item, kind)
    ]
    return " and ".join(parts) or None


def explain_invalid_options(model: type[StageOptions], exc: ValidationError) -> str:
    """A short message for refused options: per field, what was wrong and the allowed range.

    Args:
        model: the options model that refused them.
        exc: its validation error.

    Returns:
        ``"iterations: Input should be less than or equal to 200000 (allowed: at least 1 and at
        most 200000; got 10000000)"``, one clause per refused field, joined by ``"; "``.
    """
    clauses = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        field = model.model_fields.get(name)
        notes = []
        bounds = allowed_range(field) if field is not None else None
        if bounds:
            notes.append(f"allowed: {bounds}")
        if error["loc"] and error["type"] != "missing":
            shown = repr(error.get("input"))
            notes.append(f"got {shown[:_SHOWN_INPUT_CHARS]}{'…' if len(shown) > _SHOWN_INPUT_CHARS else ''}")
        where = ".".join(str(p) for p in error["loc"]) or "options"
        clauses.append(f"{where}: {error['msg']}" + (f" ({'; '.join(notes)})" if notes else ""))
    return "; ".join(clauses)
