"""Every stage option is finite and bounded, so a job the workers cannot honour is refused at upload.

The walk covers every numeric field of every options model: a field added without an upper bound
(or one that lets ``inf``/``nan`` through) fails here.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import annotated_types
import pytest
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from shared.options import OPTIONS_BY_STAGE, StageOptions
from shared.options.base import MAX_SEED, PRESET_NAMES, explain_invalid_options

INT64_MAX = 2**63 - 1


def _scalar_type(annotation: Any) -> type | None:
    """``int`` or ``float`` for a (possibly optional) numeric annotation; None otherwise."""
    if annotation in (int, float):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        numeric = [a for a in typing.get_args(annotation) if a in (int, float)]
        return numeric[0] if numeric else None
    return None


def _is_number_sequence(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (tuple, list) and any(
        a in (int, float) for a in typing.get_args(annotation)
    )


def _numeric_fields() -> list[tuple[type[StageOptions], str, FieldInfo]]:
    fields = []
    for model in OPTIONS_BY_STAGE.values():
        for name, field in model.model_fields.items():
            if _scalar_type(field.annotation) is not None or _is_number_sequence(field.annotation):
                fields.append((model, name, field))
    return fields


NUMERIC_FIELDS = _numeric_fields()


def _upper_bound(field: FieldInfo) -> float | None:
    for item in field.metadata:
        if isinstance(item, annotated_types.Le) and isinstance(item.le, int | float):
            return float(item.le)
        if isinstance(item, annotated_types.Lt) and isinstance(item.lt, int | float):
            return float(item.lt)
    return None


def _refused(model: type[StageOptions], **overrides: Any) -> bool:
    try:
        model.from_preset("standard", **overrides)
    except ValidationError:
        return True
    return False


def test_the_walk_sees_the_fields_the_issue_named() -> None:
    names = {(m.__name__, n) for m, n, _ in NUMERIC_FIELDS}
    for expected in [
        ("TensorfOptions", "n_voxels_init"),
        ("TensorfOptions", "n_voxels_final"),
        ("SplatOptions", "max_gaussians"),
        ("SfmOptions", "max_num_features"),
        ("SfmOptions", "num_threads"),
        ("SfmOptions", "seed"),
        ("TensorfOptions", "upsample_at"),
    ]:
        assert expected in names


@pytest.mark.parametrize(
    ("model", "name", "field"), NUMERIC_FIELDS, ids=[f"{m.__name__}.{n}" for m, n, _ in NUMERIC_FIELDS]
)
def test_every_numeric_option_has_an_upper_bound_and_refuses_inf_and_nan(
    model: type[StageOptions], name: str, field: FieldInfo
) -> None:
    if _is_number_sequence(field.annotation):
        assert any(isinstance(m, annotated_types.MaxLen) for m in field.metadata), f"{name} has no max_length"
        for bad in ([float("inf")], [float("nan")], [1e300]):
            assert _refused(model, **{name: bad}), f"{name}={bad} was accepted"
        return
    upper = _upper_bound(field)
    assert upper is not None, f"{model.__name__}.{name} has no upper bound (le/lt)"
    assert upper <= INT64_MAX, f"{model.__name__}.{name} allows values MongoDB cannot store"
    for bad_number in (float("inf"), float("-inf"), float("nan"), 1e999):
        assert _refused(model, **{name: bad_number}), f"{model.__name__}.{name}={bad_number} was accepted"
    assert _refused(model, **{name: 2**70})
    assert _refused(model, **{name: -(2**70)})


def test_every_seed_fits_a_32_bit_integer() -> None:
    for model in OPTIONS_BY_STAGE.values():
        assert model.from_preset("standard", seed=MAX_SEED).model_dump()["seed"] == MAX_SEED
        assert _refused(model, seed=MAX_SEED + 1)
        assert _refused(model, seed=-1)


def test_the_presets_stay_within_the_bounds() -> None:
    for model in OPTIONS_BY_STAGE.values():
        for preset in PRESET_NAMES:
            model.from_preset(preset)  # raises if a preset broke a bound


def test_a_refusal_names_the_field_and_the_allowed_range() -> None:
    from shared.options import TensorfOptions

    with pytest.raises(ValidationError) as caught:
        TensorfOptions.from_preset("standard", n_voxels_final=10**12)
    message = explain_invalid_options(TensorfOptions, caught.value)
    assert message.startswith("n_voxels_final: ")
    assert f"at least 8 and at most {512**3}" in message
    assert "got 1000000000000" in message
