"""The numba kernels of the compiled CPU rasterizer: tile binning, forward compositing and its hand-written backward.

This is the only module that imports numba; :mod:`gs_worker.rasterize_numba` imports it lazily. The model is exactly
the one of :mod:`gs_worker.rasterize_cpu` (and gsplat 1.5.3's classic kernels): pixel centres at ``(x + 0.5,
y + 0.5)``, ``σ = ½(a·dx² + c·dy²) + b·dx·dy``, ``alpha = min(0.999, o·exp(−σ))``, a Gaussian skipped when
``σ < 0`` or ``alpha < 1/255``, and a pixel finished (exclusively) at the first Gaussian that would take its
transmittance to 1e-4 or below.

Layout and loop order:

- **Binning** lists every visible Gaussian (both radii > 0) in each 16×16 tile its screen box overlaps, depth-sorted
  within a tile, as one flat ``entries`` array with per-tile offsets ``tile_start`` (a counting sort: O(N + M)).
- **Forward**: ``prange`` over tiles (handed out a few at a time, :func:`balanced_tiles`); within a tile the
  Gaussians are walked front to back and each one updates only the pixels of its own ellipse ``σ ≤ ln(255·o)`` (row
  by row, with a small margin, so float rounding at the edge never drops a pixel). Outside that ellipse
  ``alpha < 1/255`` exactly, so the skipped pixels are the ones the model skips anyway. A row segment is first filled
  with ``σ`` and ``exp(−σ)`` (:func:`_row_exponents`: along a row ``exp(−σ)`` follows a two-multiplication
  recurrence, so a row costs two exponentials whatever its length), then composited; finished pixels are one bit
  mask per tile row, so a segment whose pixels are all finished costs one test, and a tile stops when all its
  pixels are finished. Per pixel it stores the final transmittance and the entry index of the last Gaussian that
  contributed (gsplat's ``last_ids``).
- **Backward**: the same walk back to front from the tile's latest last contributor (rows whose pixels all finished
  earlier are skipped); each pixel recovers its transmittance before a Gaussian by dividing by ``1 − alpha`` (as
  gsplat's backward does) and keeps the colour composited behind it. The gradients of one tile entry are summed over
  its pixels in registers and written to that entry's row, which only its tile's iteration touches, so no atomics are
  needed; a segment sum then gives the per-Gaussian gradients.

All arithmetic is float64 (inputs are converted once per call), so the division-based recovery stays accurate. The
two compositing kernels allow one fast-math freedom only, ``contract`` (a multiply and an add may become one fused
multiply-add, which rounds once instead of twice): about a tenth off the backward. Nothing else (no reassociation, no
NaN or infinity assumptions) is relaxed, so NaN inputs and the threshold tests behave as in the reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange

from gs_worker.rasterize_cpu import ALPHA_MAX, ALPHA_THRESHOLD, TRANSMITTANCE_MIN

# Columns of a per-entry gradient row before the colour channels: d/d(mean x, mean y, conic a, b, c, opacity).
ROW_FIXED = 6
#: Tiles handed to a thread at a time: small chunks balance uneven tiles and threads the OS preempts.
TILES_PER_CHUNK = 2
#: Pixels evaluated beyond the exact ellipse edge: far more than float rounding can move it (the σ of a pixel this far
#: outside exceeds the edge's by orders of magnitude more than its rounding error), so no pixel is ever dropped.
SPAN_MARGIN = 0.05
#: σ beyond which ``exp(−σ)`` is taken as 0 (see :func:`_exp_neg`).
EXP_CUTOFF = 20.0
#: Largest tile edge: a tile row's finished pixels are one bit mask in an int64.
MAX_TILE_SIZE = 32


@contextmanager
def balanced_tiles() -> Iterator[None]:
    """Within the block, hand the tiles of ``prange`` loops started by this thread out ``TILES_PER_CHUNK`` at a time.

    numba's default schedule gives each thread one equal share of the tiles, so a thread with the busy tiles (or one
    that the OS preempts) holds up the rest. (Setting the chunk size inside a kernel would stop numba caching it.)
    """
    previous = numba.set_parallel_chunksize(TILES_PER_CHUNK)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(previous)


@njit(cache=True)
def bin_gaussians(
    means2d: np.ndarray,  # [N, 2] float64
    radii: np.ndarray,  # [N, 2] int32
    depths: np.ndarray,  # [N] float64
    tiles_x: int,
    tiles_y: int,
    tile_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """List (tile, Gaussian) pairs for every tile a visible Gaussian's box touches, depth-sorted per tile.

    Args:
        means2d: pixel-space centres. [N, 2]
        radii: integer half-extents of the screen boxes; a Gaussian is drawn when both are positive. [N, 2]
        depths: camera depths, the sort key (stable: ties keep the Gaussian order). [N]
        tiles_x: tiles per row.
        tiles_y: tiles per column.
        tile_size: tile edge in pixels.

    Returns:
        ``(tile_start [T + 1], entries [M])``: tile ``t`` holds the Gaussian ids ``entries[tile_start[t]:
        tile_start[t + 1]]``, front to back.
    """
    n = means2d.shape[0]
    visible = np.empty(n, np.int64)
    n_visible = 0
    for i in range(n):
        if radii[i, 0] > 0 and radii[i, 1] > 0 and math.isfinite(means2d[i, 0]) and math.isfinite(means2d[i, 1]):
            visible[n_visible] = i
            n_visible += 1
    visible = visible[:n_visible]
    order = visible[np.argsort(depths[visible], kind="mergesort")]

    rects = np.empty((n_visible, 4), np.int64)  # x0, x1, y0, y1 (tile indices, exclusive ends)
    counts = np.zeros(tiles_x * tiles_y + 1, np.int64)
    for k in range(n_visible):
        g = order[k]
        rx, ry = float(radii[g, 0]), float(radii[g, 1])
        x0 = min(max(math.floor((means2d[g, 0] - rx) / tile_size), 0.0), float(tiles_x))
        x1 = min(max(math.ceil((means2d[g, 0] + rx) / tile_size), 0.0), float(tiles_x))
        y0 = min(max(math.floor((means2d[g, 1] - ry) / tile_size), 0.0), float(tiles_y))
        y1 = min(max(math.ceil((means2d[g, 1] + ry) / tile_size), 0.0), float(tiles_y))
        rects[k, 0], rects[k, 1], rects[k, 2], rects[k, 3] = int(x0), int(x1), int(y0), int(y1)
        for ty in range(int(y0), int(y1)):
            for tx in range(int(x0), int(x1)):
                counts[ty * tiles_x + tx + 1] += 1
    tile_start = np.cumsum(counts)
    fill = tile_start[:-1].copy()
    entries = np.empty(tile_start[-1], np.int64)
    for k in range(n_visible):  # in depth order, so every tile's list comes out sorted
        for ty in range(rects[k, 2], rects[k, 3]):
            for tx in range(rects[k, 0], rects[k, 1]):
                t = ty * tiles_x + tx
                entries[fill[t]] = order[k]
                fill[t] += 1
    return tile_start, entries


@njit(cache=True)
def _pixel_range(centre: float, half_width: float, first: int, stop: int) -> tuple[int, int]:
    """Pixels ``i`` in ``[first, stop)`` whose centre ``i + 0.5`` lies within ``half_width + SPAN_MARGIN`` of ``centre``.

    Returns ``(begin, end)``, end exclusive; empty when the interval misses the range or is not a number.
    """
    lo = max(centre - half_width - SPAN_MARGIN - 0.5, float(first))
    hi = min(centre + half_width + SPAN_MARGIN - 0.5, float(stop - 1))
    if not lo <= hi:
        return first, first
    return math.ceil(lo), math.floor(hi) + 1


@njit(cache=True)
def _ellipse(a: float, b: float, c: float, opacity: float) -> tuple[bool, float, float, float]:
    """The ellipse ``σ ≤ ln(255·o)`` outside which ``alpha < 1/255``.

    Returns ``(bounded, 2·a·L, det, half_height)`` with ``L = ln(255·o)`` and ``det = a·c − b²``; ``bounded`` is
    False for a conic that is not positive definite (then every pixel of the tile is evaluated).
    """
    det = a * c - b * b
    level = math.log(opacity / ALPHA_THRESHOLD)
    if a > 0.0 and det > 0.0 and math.isfinite(level) and math.isfinite(det):
        return True, 2.0 * a * level, det, math.sqrt(2.0 * level * a / det)
    return False, 0.0, det, 0.0


@njit(cache=True)
def _row_columns(
    bounded: bool, two_a_level: float, det: float, a: float, b: float, mx: float, dy: float, x_first: int, x_stop: int
) -> tuple[int, int]:
    """Columns of one pixel row (offset ``dy`` from the centre) inside the ellipse, plus ``SPAN_MARGIN``."""
    if not bounded:
        return x_first, x_stop
    disc = two_a_level - det * dy * dy
    half_width = math.sqrt(disc) / a if disc > 0.0 else 0.0
    return _pixel_range(mx - b * dy / a, half_width, x_first, x_stop)


@njit(cache=True, inline="always")
def _exp_neg(sigma: float) -> float:
    """``exp(−σ)`` for ``σ ≤ 20`` to a relative error below 1e-12, and 0 beyond (and for NaN); per pixel for conics that
    are not positive definite (:func:`_row_exponents`).

    Plain arithmetic — the degree-13 Taylor polynomial of ``exp(−σ/32)`` (truncation error below 2e-14 for
    ``0 ≤ σ ≤ 20``) squared five times — so the loop over a row segment that calls it vectorises, which libm's
    ``exp`` prevents; it is about a fifth faster overall. Beyond σ = 20, ``o·exp(−σ) < 1/255`` for any opacity up
    to 10⁶, so returning 0 there changes no pixel.
    """
    r = -min(sigma, EXP_CUTOFF) * (1.0 / 32.0)
    poly = 1.0 / 6227020800.0  # 1/13!
    poly = poly * r + 1.0 / 479001600.0
    poly = poly * r + 1.0 / 39916800.0
    poly = poly * r + 1.0 / 3628800.0
    poly = poly * r + 1.0 / 362880.0
    poly = poly * r + 1.0 / 40320.0
    poly = poly * r + 1.0 / 5040.0
    poly = poly * r + 1.0 / 720.0
    poly = poly * r + 1.0 / 120.0
    poly = poly * r + 1.0 / 24.0
    poly = poly * r + 1.0 / 6.0
    poly = poly * r + 0.5
    poly = poly * r + 1.0
    poly = poly * r + 1.0
    poly *= poly
    poly *= poly
    poly *= poly
    poly *= poly
    poly *= poly
    return poly if sigma <= EXP_CUTOFF else 0.0


@njit(cache=True, inline="always")
def _row_exponents(
    bounded: bool,
    step: float,
    x_begin: int,
    x_end: int,
    dy: float,
    mx: float,
    a: float,
    b: float,
    c: float,
    sigmas: np.ndarray,
    visibilities: np.ndarray,
) -> None:
    """``σ`` and ``exp(−σ)`` of the pixels ``x_begin..x_end`` of one row into ``sigmas[0:n]``, ``visibilities[0:n]``.

    For a bounded ellipse (positive-definite conic: σ stays between 0 and a few units on the row's pixels) the
    exponentials are a recurrence: along a row ``σ`` is quadratic in x, so ``exp(−σ(x + 1)) = exp(−σ(x))·r(x)`` with
    ``r(x) = exp(−(a·dx + b·dy + a/2))`` and ``r(x + 1) = r(x)·step``, ``step = exp(−a)`` (the caller's, once per
    Gaussian): two multiplications per pixel instead of an exponential, from two exponentials per row (relative error
    below 1e-13 over a 32-pixel row). Otherwise (``step`` unused) every pixel gets :func:`_exp_neg`. The forward and
    the backward call this with the same arguments and so see the same values.
    """
    if bounded and x_end > x_begin:
        dx = x_begin + 0.5 - mx
        visibility = math.exp(-(0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy))
        ratio = math.exp(-(a * dx + b * dy + 0.5 * a))
        for x in range(x_begin, x_end):
            dx = x + 0.5 - mx
            sigmas[x - x_begin] = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
            visibilities[x - x_begin] = visibility
            visibility *= ratio
            ratio *= step
        return
    for x in range(x_begin, x_end):
        dx = x + 0.5 - mx
        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
        sigmas[x - x_begin] = sigma
        visibilities[x - x_begin] = _exp_neg(sigma)


@njit(parallel=True, cache=True, fastmath={"contract"})
def composite_forward(
    tile_start: np.ndarray,  # [T + 1] int64
    entries: np.ndarray,  # [M] int64
    means2d: np.ndarray,  # [N, 2] float64
    conics: np.ndarray,  # [N, 3] float64
    opacities: np.ndarray,  # [N] float64
    colors: np.ndarray,  # [N, D] float64
    width: int,
    height: int,
    tiles_x: int,
    tile_size: int,
    out_color: np.ndarray,  # [H, W, D] float64, written
    out_transmittance: np.ndarray,  # [H, W] float64, written
    out_last: np.ndarray,  # [H, W] int64, written
) -> None:
    """Composite every tile front to back into ``out_color``, ``out_transmittance`` and ``out_last``.

    Args:
        tile_start: per-tile offsets into ``entries`` (see :func:`bin_gaussians`). [T + 1]
        entries: Gaussian ids, tile by tile, front to back. [M]
        means2d: pixel-space centres. [N, 2]
        conics: inverse 2D covariances (a, b, c). [N, 3]
        opacities: opacities. [N]
        colors: features. [N, D]
        width: image width.
        height: image height.
        tiles_x: tiles per row.
        tile_size: tile edge in pixels.
        out_color: composited colour without background. [H, W, D]
        out_transmittance: transmittance after the last contributing Gaussian. [H, W]
        out_last: entry index of each pixel's last contributing Gaussian, −1 for none. [H, W]
    """
    n_channels = colors.shape[1]
    n_tile_pixels = tile_size * tile_size
    for t in prange(tile_start.shape[0] - 1):
        x_first, y_first = (t % tiles_x) * tile_size, (t // tiles_x) * tile_size
        x_stop, y_stop = min(x_first + tile_size, width), min(y_first + tile_size, height)
        transmittance = np.ones(n_tile_pixels)
        last = np.full(n_tile_pixels, -1, np.int64)
        color = np.zeros((n_tile_pixels, n_channels))
        finished = np.zeros(tile_size, np.int64)  # per row, a bit per finished pixel
        sigmas, visibilities = np.empty(tile_size), np.empty(tile_size)
        n_open = (x_stop - x_first) * (y_stop - y_first)
        for j in range(tile_start[t], tile_start[t + 1]):
            g = entries[j]
            opacity = opacities[g]
            if not opacity >= ALPHA_THRESHOLD:  # alpha ≤ opacity: nothing to draw
                continue
            mx, my = means2d[g, 0], means2d[g, 1]
            a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
            feature = colors[g]
            bounded, two_a_level, det, half_height = _ellipse(a, b, c, opacity)
            step = math.exp(-a) if bounded else 0.0  # the exponentials' recurrence along a row (_row_exponents)
            y_begin, y_end = _pixel_range(my, half_height, y_first, y_stop) if bounded else (y_first, y_stop)
            for y in range(y_begin, y_end):
                dy = y + 0.5 - my
                x_begin, x_end = _row_columns(bounded, two_a_level, det, a, b, mx, dy, x_first, x_stop)
                span = ((1 << (x_end - x_begin)) - 1) << (x_begin - x_first)
                if finished[y - y_first] & span == span:
                    continue
                _row_exponents(bounded, step, x_begin, x_end, dy, mx, a, b, c, sigmas, visibilities)
                row = (y - y_first) * tile_size - x_first
                for x in range(x_begin, x_end):
                    bit = 1 << (x - x_first)
                    if finished[y - y_first] & bit or sigmas[x - x_begin] < 0.0:
                        continue
                    alpha = min(ALPHA_MAX, opacity * visibilities[x - x_begin])
                    if alpha < ALPHA_THRESHOLD:
                        continue
                    p = row + x
                    before = transmittance[p]
                    after = before * (1.0 - alpha)
                    if after <= TRANSMITTANCE_MIN:
                        finished[y - y_first] |= bit
                        n_open -= 1
                        continue
                    weight = alpha * before
                    if n_channels == 3:  # RGB, unrolled
                        color[p, 0] += weight * feature[0]
                        color[p, 1] += weight * feature[1]
                        color[p, 2] += weight * feature[2]
                    else:
                        for k in range(n_channels):
                            color[p, k] += weight * feature[k]
                    transmittance[p] = after
                    last[p] = j
            if n_open == 0:
                break
        for y in range(y_first, y_stop):
            for x in range(x_first, x_stop):
                p = (y - y_first) * tile_size + x - x_first
                out_transmittance[y, x] = transmittance[p]
                out_last[y, x] = last[p]
                for k in range(n_channels):
                    out_color[y, x, k] = color[p, k]


@njit(parallel=True, cache=True, fastmath={"contract"})
def composite_backward(
    tile_start: np.ndarray,  # [T + 1] int64
    entries: np.ndarray,  # [M] int64
    means2d: np.ndarray,  # [N, 2] float64
    conics: np.ndarray,  # [N, 3] float64
    opacities: np.ndarray,  # [N] float64
    colors: np.ndarray,  # [N, D] float64
    width: int,
    height: int,
    tiles_x: int,
    tile_size: int,
    final_transmittance: np.ndarray,  # [H, W] float64
    last_entry: np.ndarray,  # [H, W] int64
    grad_color: np.ndarray,  # [H, W, D] float64
    grad_transmittance: np.ndarray,  # [H, W] float64
    out_rows: np.ndarray,  # [M, 6 + D] float64, written
) -> None:
    """Per tile entry, the gradient of the loss with respect to that Gaussian's inputs, summed over the tile.

    With ``S`` the colour composited behind Gaussian ``j`` and ``T_j`` the transmittance in front of it,
    ``∂C/∂alpha_j = T_j·c_j − S/(1 − alpha_j)`` and ``∂T_final/∂alpha_j = −T_final/(1 − alpha_j)``; ``alpha`` has
    no gradient where the 0.999 clamp is active; ``∂alpha/∂o = exp(−σ)`` and ``∂alpha/∂σ = −alpha``.

    Args:
        tile_start: per-tile offsets into ``entries``. [T + 1]
        entries: Gaussian ids, tile by tile, front to back. [M]
        means2d: pixel-space centres. [N, 2]
        conics: inverse 2D covariances (a, b, c). [N, 3]
        opacities: opacities. [N]
        colors: features. [N, D]
        width: image width.
        height: image height.
        tiles_x: tiles per row.
        tile_size: tile edge in pixels.
        final_transmittance: the forward pass's transmittance. [H, W]
        last_entry: the forward pass's last contributing entry per pixel. [H, W]
        grad_color: gradient of the loss with respect to the colour. [H, W, D]
        grad_transmittance: gradient of the loss with respect to the transmittance. [H, W]
        out_rows: per entry, d/d(mean x, mean y, a, b, c, opacity, colour 0..D−1). [M, 6 + D]
    """
    n_channels = colors.shape[1]
    n_tile_pixels = tile_size * tile_size
    for t in prange(tile_start.shape[0] - 1):
        x_first, y_first = (t % tiles_x) * tile_size, (t // tiles_x) * tile_size
        x_stop, y_stop = min(x_first + tile_size, width), min(y_first + tile_size, height)
        transmittance = np.ones(n_tile_pixels)
        last = np.full(n_tile_pixels, -1, np.int64)
        final_term = np.zeros(n_tile_pixels)  # dL/dT_final · T_final
        grad_c = np.zeros((n_tile_pixels, n_channels))
        behind = np.zeros((n_tile_pixels, n_channels))
        row_newest = np.full(tile_size, tile_start[t] - 1, np.int64)  # latest last contributor per row
        grad_feature = np.zeros(n_channels)
        sigmas, visibilities = np.empty(tile_size), np.empty(tile_size)
        for y in range(y_first, y_stop):
            for x in range(x_first, x_stop):
                p = (y - y_first) * tile_size + x - x_first
                transmittance[p] = final_transmittance[y, x]
                last[p] = last_entry[y, x]
                final_term[p] = grad_transmittance[y, x] * final_transmittance[y, x]
                for k in range(n_channels):
                    grad_c[p, k] = grad_color[y, x, k]
                row_newest[y - y_first] = max(row_newest[y - y_first], last[p])
        newest = row_newest.max()
        for j in range(tile_start[t], tile_start[t + 1]):
            for k in range(ROW_FIXED + n_channels):
                out_rows[j, k] = 0.0
        for j in range(newest, tile_start[t] - 1, -1):
            g = entries[j]
            opacity = opacities[g]
            if not opacity >= ALPHA_THRESHOLD:
                continue
            mx, my = means2d[g, 0], means2d[g, 1]
            a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
            feature = colors[g]
            bounded, two_a_level, det, half_height = _ellipse(a, b, c, opacity)
            step = math.exp(-a) if bounded else 0.0  # the exponentials' recurrence along a row (_row_exponents)
            y_begin, y_end = _pixel_range(my, half_height, y_first, y_stop) if bounded else (y_first, y_stop)
            g_mx = g_my = g_a = g_b = g_c = g_o = 0.0
            grad_feature[:] = 0.0
            for y in range(y_begin, y_end):
                if j > row_newest[y - y_first]:
                    continue
                dy = y + 0.5 - my
                x_begin, x_end = _row_columns(bounded, two_a_level, det, a, b, mx, dy, x_first, x_stop)
                _row_exponents(bounded, step, x_begin, x_end, dy, mx, a, b, c, sigmas, visibilities)
                row = (y - y_first) * tile_size - x_first
                for x in range(x_begin, x_end):
                    p = row + x
                    if j > last[p] or sigmas[x - x_begin] < 0.0:
                        continue
                    visibility = visibilities[x - x_begin]
                    raw_alpha = opacity * visibility
                    alpha = min(ALPHA_MAX, raw_alpha)
                    if alpha < ALPHA_THRESHOLD:
                        continue
                    dx = x + 0.5 - mx
                    ratio = 1.0 / (1.0 - alpha)
                    before = transmittance[p] * ratio  # transmittance in front of this Gaussian
                    weight = alpha * before
                    grad_alpha = -final_term[p] * ratio
                    if n_channels == 3:  # RGB, unrolled
                        grad_alpha += (
                            grad_c[p, 0] * (before * feature[0] - behind[p, 0] * ratio)
                            + grad_c[p, 1] * (before * feature[1] - behind[p, 1] * ratio)
                            + grad_c[p, 2] * (before * feature[2] - behind[p, 2] * ratio)
                        )
                        grad_feature[0] += weight * grad_c[p, 0]
                        grad_feature[1] += weight * grad_c[p, 1]
                        grad_feature[2] += weight * grad_c[p, 2]
                        behind[p, 0] += weight * feature[0]
                        behind[p, 1] += weight * feature[1]
                        behind[p, 2] += weight * feature[2]
                    else:
                        for k in range(n_channels):
                            grad_alpha += grad_c[p, k] * (before * feature[k] - behind[p, k] * ratio)
                            grad_feature[k] += weight * grad_c[p, k]
                            behind[p, k] += weight * feature[k]
                    transmittance[p] = before
                    if raw_alpha <= ALPHA_MAX:
                        g_o += grad_alpha * visibility
                        grad_sigma = -alpha * grad_alpha
                        g_a += 0.5 * dx * dx * grad_sigma
                        g_b += dx * dy * grad_sigma
                        g_c += 0.5 * dy * dy * grad_sigma
                        g_mx -= (a * dx + b * dy) * grad_sigma  # dσ/dmx = −(a·dx + b·dy)
                        g_my -= (b * dx + c * dy) * grad_sigma
            out_rows[j, 0] = g_mx
            out_rows[j, 1] = g_my
            out_rows[j, 2] = g_a
            out_rows[j, 3] = g_b
            out_rows[j, 4] = g_c
            out_rows[j, 5] = g_o
            for k in range(n_channels):
                out_rows[j, ROW_FIXED + k] = grad_feature[k]


@njit(cache=True)
def sum_rows_per_gaussian(entries: np.ndarray, rows: np.ndarray, n_gaussians: int) -> np.ndarray:
    """Segment sum of the per-entry gradient rows into one row per Gaussian.

    Args:
        entries: Gaussian id of each entry. [M]
        rows: per-entry gradients. [M, R]
        n_gaussians: N.

    Returns:
        Per-Gaussian gradients (zero for Gaussians in no tile). [N, R]
    """
    out = np.zeros((n_gaussians, rows.shape[1]))
    for j in range(entries.shape[0]):
        g = entries[j]
        for k in range(rows.shape[1]):
            out[g, k] += rows[j, k]
    return out
