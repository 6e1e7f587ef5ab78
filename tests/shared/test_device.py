"""The one device rule (shared.device): ``auto``, ``cpu`` and ``cuda`` as the stages, the commands and the
workers' announcement read them."""

from __future__ import annotations

import pytest
import torch

from shared.device import cuda_available, device_class, device_name, resolve_device
from shared.errors import ErrorCode, StageError


def test_cpu_is_the_cpu_whatever_the_machine() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert device_class("cpu") == "cpu"
    assert device_name(torch.device("cpu")) == "cpu"


def test_auto_follows_whether_torch_sees_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert (cuda_available(), device_class("auto"), resolve_device("auto")) == (False, "cpu", torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert (cuda_available(), device_class("auto"), resolve_device("auto")) == (True, "cuda", torch.device("cuda"))


def test_cuda_without_a_gpu_is_cuda_unavailable_but_is_still_the_class_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StageError) as info:
        resolve_device("cuda")
    assert info.value.code == ErrorCode.CUDA_UNAVAILABLE
    assert device_class("cuda") == "cuda"  # what was asked for: the stage itself refuses it


# An explicit skipif, not skip_or_fail: CI runners are CPU-only, so this can only run on a GPU machine.
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_is_named_in_the_report() -> None:
    name = device_name(resolve_device("cuda"))
    assert name.startswith("cuda (") and name.endswith(")") and len(name) > len("cuda ()")
