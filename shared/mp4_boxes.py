"""Reading MP4/QuickTime box headers straight from the file: is it cut off, and how is its video rotated.

The upload check needs both without decoding (``shared.video.probe_video_header``): FFmpeg refuses
an MP4 whose index (``moov``) was cut off with a generic "invalid data", and PyAV exposes a
stream's display matrix only on decoded frames. Only box headers and the small ``tkhd``/``hdlr``
boxes are read; every other box is skipped by seeking, so the work is bounded by the number of
boxes, not by the size of the file or of its index.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: Top-level box types an MP4 or QuickTime file may start with.
_FIRST_BOXES = {b"ftyp", b"wide", b"free", b"skip", b"mdat", b"moov", b"pnot"}
#: The most boxes walked at one level: a real file has a handful; more means garbage.
_MAX_BOXES = 4096


def _boxes(f: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, payload_start, box_end)`` for the boxes in ``[start, end)``; ``box_end`` may pass ``end``."""
    pos = start
    for _ in range(_MAX_BOXES):
        if pos + 8 > end:
            return
        f.seek(pos)
        size, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:
            raw = f.read(8)
            if len(raw) < 8:
                return
            size, header = struct.unpack(">Q", raw)[0], 16
        elif size == 0:  # extends to the end of the file
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, pos + size
        pos += size


def looks_cut_off(path: Path) -> bool:
    """True when ``path`` starts like an MP4/QuickTime file but a top-level box runs past its end or ``moov`` is missing.

    That is what a copy or upload cut short looks like when the index was to be written last.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        boxes = list(_boxes(f, 0, size))
    if not boxes or boxes[0][0] not in _FIRST_BOXES:
        return False
    return boxes[-1][2] > size or not any(kind == b"moov" for kind, _, _ in boxes)


def _child(f: BinaryIO, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for child, payload, box_end in _boxes(f, start, end):
        if child == kind:
            return payload, min(box_end, end)
    return None


def _handler(f: BinaryIO, trak: tuple[int, int]) -> bytes:
    mdia = _child(f, *trak, b"mdia")
    hdlr = _child(f, *mdia, b"hdlr") if mdia else None
    if hdlr is None:
        return b""
    f.seek(hdlr[0] + 8)  # version + flags, pre_defined
    return f.read(4)


def _matrix_rotation(f: BinaryIO, tkhd: tuple[int, int]) -> int:
    f.seek(tkhd[0])
    version = f.read(1)[0]
    matrix_offset = 1 + 3 + (32 if version == 1 else 20) + 8 + 8  # flags, times/ids/duration, reserved, layer...
    f.seek(tkhd[0] + matrix_offset)
    a, b = struct.unpack(">ii", f.read(8))
    if a == 0 and b == 0:
        return 0
    degrees = -math.degrees(math.atan2(b, a))  # FFmpeg's av_display_rotation_get on the same matrix
    return round(degrees / 90.0) % 4 * 90


def video_rotation(path: Path) -> int:
    """The counter-clockwise display rotation of the first video track (0, 90, 180 or 270), from its ``tkhd`` matrix.

    The same convention as ``av.VideoFrame.rotation``; 0 when there is no readable video track.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        moov = _child(f, 0, size, b"moov")
        if moov is None:
            return 0
        for kind, payload, box_end in _boxes(f, *moov):
            if kind != b"trak":
                continue
            trak = (payload, min(box_end, moov[1]))
            if _handler(f, trak) != b"vide":
                continue
            tkhd = _child(f, *trak, b"tkhd")
            return _matrix_rotation(f, tkhd) if tkhd else 0
    return 0
