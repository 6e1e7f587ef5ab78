"""Measurements of sampled video frames for the capture check: sharpness, exposure, image motion and parallax.

Everything works on grey ``[H, W]`` uint8 images at the check's reduced size. OpenCV (``cv2``) does
the corner detection, the pyramidal Lucas–Kanade tracking and the robust homography and
essential-matrix fits; it is imported here only, so :mod:`shared.capture.report` (the result
model the web server uses) needs no OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import cv2
import numpy as np

#: Corners tracked between two frames.
_MAX_CORNERS = 200
#: A track whose backward-tracked end misses its start by more than this (pixels) is dropped.
_FORWARD_BACKWARD_PX = 2.0


class _LucasKanade(TypedDict):
    winSize: tuple[int, int]
    maxLevel: int
    criteria: tuple[int, int, float]


#: Lucas–Kanade settings: the pyramid follows displacements of about a fifth of a 480-pixel frame.
_LK: _LucasKanade = {
    "winSize": (21, 21),
    "maxLevel": 4,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
}
#: Below this share of corners followed, two frames count as untrackable (a jump, a cut).
_TRACKED_SHARE = 0.3
#: Focal length assumed for a video of unknown intrinsics, as a share of its long side (a phone's
#: main camera films about 65° across).
FOCAL_PER_LONG_SIDE = 0.8
#: RANSAC inlier threshold of the two-view fits, as a share of the image diagonal.
_FIT_THRESHOLD = 0.002


def grey(rgb: np.ndarray) -> np.ndarray:
    """The luma of an ``[H, W, 3]`` uint8 RGB image as ``[H, W]`` uint8."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def diagonal(image: np.ndarray) -> float:
    """The length of an image's diagonal in pixels."""
    return float(np.hypot(image.shape[0], image.shape[1]))


def is_flat(grey_image: np.ndarray) -> bool:
    """Whether a grey image has no detail at all (black, white, a blank wall): its grey levels hardly vary."""
    return float(grey_image.std()) < 1.0


def sharpness(grey_image: np.ndarray) -> float:
    """How sharp a grey image is, in any direction: its weakest second derivative over its grey-level variance.

    The second differences along the rows, the columns and both diagonals are computed; the
    smallest of their variances, divided by the variance of the grey levels, is the figure. Taking
    the weakest direction catches motion blur (which smears one direction only) as well as focus
    blur; dividing by the grey-level variance makes it independent of contrast and exposure (a dim
    frame is not a blurry one); at the check's fixed working size it is comparable between videos
    of any resolution. About 0.1 for the real garden clip at 480 pixels, 0.002 once it is blurred.
    """
    if is_flat(grey_image):  # no detail to judge
        return 0.0
    g = grey_image.astype(np.float32)
    contrast = float(g.var())
    centre = g[1:-1, 1:-1]
    along = (
        g[1:-1, 2:] + g[1:-1, :-2],  # rows
        g[2:, 1:-1] + g[:-2, 1:-1],  # columns
        g[2:, 2:] + g[:-2, :-2],  # diagonal (a step √2 long: variance halved below)
        g[2:, :-2] + g[:-2, 2:],  # anti-diagonal
    )
    energies = [float((pair - 2.0 * centre).var()) for pair in along]
    energies[2] /= 2.0
    energies[3] /= 2.0
    return min(energies) / contrast


@dataclass(frozen=True)
class Exposure:
    """A frame's brightness figures."""

    mean: float  # mean grey level, 0-255
    clipped_high: float  # share of pixels at 250 or above
    clipped_low: float  # share of pixels at 5 or below


def exposure(grey_image: np.ndarray) -> Exposure:
    """The mean brightness and the shares of blown-out and crushed pixels of a grey image."""
    return Exposure(
        mean=float(grey_image.mean()),
        clipped_high=float((grey_image >= 250).mean()),
        clipped_low=float((grey_image <= 5).mean()),
    )


def corners(grey_image: np.ndarray) -> np.ndarray:
    """Up to a few hundred well-spread corners of a grey image, ``[N, 2]`` float32 (may be empty)."""
    spacing = max(3.0, min(grey_image.shape) / 30.0)
    found = cv2.goodFeaturesToTrack(grey_image, _MAX_CORNERS, 0.01, spacing, blockSize=5)
    return np.zeros((0, 2), np.float32) if found is None else found.reshape(-1, 2).astype(np.float32)


def track(previous: np.ndarray, current: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Follow ``points`` from one grey image into the next, keeping tracks that agree both ways.

    Returns:
        ``(positions [N, 2] float32, ok [N] bool)``: where each point went, and whether the
        forward-backward check kept it.
    """
    if len(points) == 0:
        return points.copy(), np.zeros(0, dtype=bool)
    p0 = points.reshape(-1, 1, 2)
    # OpenCV's stubs type nextPts as an array, but None (start from prevPts) is what the function documents
    p1, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, p0, None, **_LK)  # type: ignore[call-overload]
    back, status_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, p1, None, **_LK)  # type: ignore[call-overload]
    error = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
    h, w = current.shape
    p1 = p1.reshape(-1, 2)
    inside = (p1[:, 0] >= 0) & (p1[:, 0] < w) & (p1[:, 1] >= 0) & (p1[:, 1] < h)
    ok = status.ravel().astype(bool) & status_back.ravel().astype(bool) & (error < _FORWARD_BACKWARD_PX) & inside
    return p1, ok


def flow_magnitude(previous: np.ndarray, current: np.ndarray) -> float | None:
    """The median image motion between two grey images, as a share of the image diagonal.

    Returns:
        The median displacement of the tracked corners over the diagonal; None when the first
        image has fewer than 8 corners (a featureless or black frame); infinity when fewer than
        :data:`_TRACKED_SHARE` of its corners could be followed (a change too large to track
        counts as too fast).
    """
    start = corners(previous)
    if len(start) < 8:
        return None
    end, ok = track(previous, current, start)
    if ok.sum() < max(8, _TRACKED_SHARE * len(start)):  # the few that "track" are chance matches
        return float("inf")
    return float(np.median(np.linalg.norm(end[ok] - start[ok], axis=1))) / diagonal(current)


def intrinsics(grey_image: np.ndarray) -> np.ndarray:
    """A pinhole ``K`` ``[3, 3]`` for an image of unknown camera: :data:`FOCAL_PER_LONG_SIDE`, centred."""
    h, w = grey_image.shape
    f = FOCAL_PER_LONG_SIDE * max(h, w)
    return np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class TwoView:
    """How the tracks between two frames are best explained."""

    tracks: int
    homography_share: float  # share of the tracks a single homography explains (rotation or a plane)
    essential_share: float  # share an essential matrix explains (any rigid motion)
    parallax: float  # 1 - homography_share / essential_share, in [0, 1]: ~0 when turning on the spot
    rotation_vector: np.ndarray  # [3] axis × angle (radians) of the camera's rotation, camera frame


def two_view(start: np.ndarray, end: np.ndarray, K: np.ndarray, diagonal_px: float) -> TwoView | None:
    """Fit a homography and an essential matrix to matched points and compare how many each explains.

    A camera that only turns moves every point by one homography; a camera that moves through a
    scene with depth makes points at different depths move differently, which only the essential
    matrix explains. The rotation comes from the essential matrix when there is parallax and from
    the homography (``K⁻¹ H K``) when there is not.

    Args:
        start: ``[N, 2]`` points in the first frame.
        end: ``[N, 2]`` the same points in the second frame.
        K: the assumed intrinsics.
        diagonal_px: the image diagonal, which scales the RANSAC threshold.

    Returns:
        The comparison, or None with fewer than 12 tracks or when a fit fails.
    """
    if len(start) < 12:
        return None
    threshold = max(0.5, _FIT_THRESHOLD * diagonal_px)
    # A homography's transfer error is a 2-D distance, the epipolar error a 1-D one: the same
    # threshold would let the essential matrix keep noisy tracks the homography drops, and so
    # find parallax in a pure rotation. Twice the threshold balances them.
    H, h_mask = cv2.findHomography(start, end, cv2.RANSAC, 2.0 * threshold, maxIters=500, confidence=0.995)
    E, e_mask = cv2.findEssentialMat(start, end, K, cv2.RANSAC, 0.999, threshold)
    if H is None or E is None or e_mask is None or h_mask is None:
        return None
    if E.shape != (3, 3):  # several solutions stacked: keep the first
        E = E[:3]
    h_share = float(h_mask.mean())
    e_share = max(float(e_mask.mean()), h_share, 1e-6)
    parallax = float(np.clip(1.0 - h_share / e_share, 0.0, 1.0))
    if parallax > 0.1:
        _, R, _, _ = cv2.recoverPose(E, start, end, K, mask=e_mask.copy())
    else:
        R = _nearest_rotation(np.linalg.inv(K) @ H @ K)
    rvec, _ = cv2.Rodrigues(R)
    return TwoView(
        tracks=len(start),
        homography_share=h_share,
        essential_share=e_share,
        parallax=parallax,
        rotation_vector=rvec.ravel(),
    )


def _nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation closest to ``matrix`` (its polar factor, with determinant +1)."""
    u, _, vt = np.linalg.svd(matrix)
    R: np.ndarray = u @ vt
    if np.linalg.det(R) < 0:
        R = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    return R


def sees_again(first: np.ndarray, last: np.ndarray, max_motion: float) -> bool:
    """Whether ``last`` shows what ``first`` showed, from about the same place (a loop closed).

    True when at least half of the first image's corners are followed into the last one and their
    median displacement is under ``max_motion`` image diagonals.
    """
    start = corners(first)
    if len(start) < 8:
        return False
    end, ok = track(first, last, start)
    if ok.mean() < 0.5:
        return False
    return float(np.median(np.linalg.norm(end[ok] - start[ok], axis=1))) / diagonal(last) < max_motion
