"""Screen-fixed overlays of the input video (a UI badge, a logo, a timestamp), found in the frames.

Such an overlay stays at the same pixels while the camera moves, so the trainer rebuilds it as splats
that sit wherever they project onto it from every view — a floater. :func:`static_overlay_mask` finds
the pixels that barely change over the whole capture (per-pixel standard deviation below
:data:`STATIC_STD` in every channel), opens the mask (3×3) so that flat, evenly lit surfaces that happen
to stay similar leave only specks, keeps the connected regions of at least :data:`MIN_AREA` of the
image and widens them by :data:`DILATE_FRACTION` of its long side. When more than :data:`MAX_AREA` of the image is static the camera hardly moved and no mask is
returned. The clean-up's ``overlay`` step removes the splats that project into the mask in most of the
frames that see them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: A pixel whose standard deviation over the capture is below this (images in [0, 1]) is static.
STATIC_STD = 0.012
#: Static regions smaller than this share of the image are ignored.
MIN_AREA = 0.001
#: More of the image than this static: the camera did not move enough to tell an overlay.
MAX_AREA = 0.2
#: The mask is widened by this share of the image's long side: the centres of the splats that draw the
#: overlay's edge lie around it.
DILATE_FRACTION = 0.02


def static_overlay_mask(images: Iterable[np.ndarray]) -> np.ndarray | None:
    """The overlay's pixels ``[H, W]`` bool, or None when there is none (or the camera hardly moved).

    Args:
        images: the capture's frames, ``[H, W, 3]`` floats in ``[0, 1]``, all the same size (at least 8).
    """
    from scipy import ndimage

    total: np.ndarray | None = None
    total_sq: np.ndarray | None = None
    count = 0
    for image in images:
        value = np.asarray(image, dtype=np.float64)
        total = value.copy() if total is None else total + value
        total_sq = value**2 if total_sq is None else total_sq + value**2
        count += 1
    if total is None or total_sq is None or count < 8:
        return None
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0)).max(axis=2)
    static = ndimage.binary_opening(std < STATIC_STD, structure=np.ones((3, 3), dtype=bool))
    if static.mean() > MAX_AREA:
        return None
    labels, n = ndimage.label(static)
    if n == 0:
        return None
    sizes = np.asarray(ndimage.sum(static, labels, range(1, n + 1)))
    keep = np.flatnonzero(sizes >= MIN_AREA * static.size) + 1
    if len(keep) == 0:
        return None
    mask = np.isin(labels, keep)
    return ndimage.binary_dilation(mask, iterations=max(1, round(DILATE_FRACTION * max(mask.shape))))
