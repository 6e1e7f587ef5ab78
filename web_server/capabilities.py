"""The training device the server advertises, and the default preset that follows from it."""

from __future__ import annotations

from shared.options.base import DeviceClass, PresetName, default_preset_for
from shared.settings import Settings
from web_server.store import Store


def training_device(settings: Settings, store: Store) -> DeviceClass | None:
    """``VID2SCENE_TRAINING_DEVICE`` when set, else the device of the training worker that announced itself last.

    Args:
        settings: the server's settings.
        store: the job store (its ``workers`` collection holds the announcements).

    Returns:
        ``"cuda"``, ``"cpu"``, or None when no training worker has announced itself and none is configured.
    """
    if settings.training_device != "auto":
        return settings.training_device
    device = store.latest_worker_device()
    if device == "cuda":
        return "cuda"
    if device == "cpu":
        return "cpu"
    return None


def default_preset(settings: Settings, store: Store) -> PresetName:
    """The preset of a job that names none (:func:`shared.options.base.default_preset_for` of the training device)."""
    return default_preset_for(training_device(settings, store))[0]
