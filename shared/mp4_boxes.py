"""Reading MP4/QuickTime box headers straight from the file: is it cut off, and its video track's frame count,
duration and rotation.

The upload check needs these without decoding (``shared.video.probe_video_header``): FFmpeg refuses
an MP4 whose index (``moov``) was cut off with a generic "invalid data", and PyAV exposes a
stream's display matrix only on decoded frames, and parsing a million-frame index costs FFmpeg
tens of MB before anything can be checked. Only box headers and the small ``tkhd``/``hdlr``
boxes are read; every other box is skipped by seeking, so the work is bounded by the number of
boxes, not by the size of the file or of its index.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class VideoTrack:
    """What the first video track's headers say, read before FFmpeg parses its (possibly huge) sample index."""

    sample_count: int  # frames, from ``stsz``/``stz2`` (0 in a fragmented file)
    duration_s: float | None  # from ``mdhd``
    rotation_deg: int  # counter-clockwise, from ``tkhd``, as ``av.VideoFrame.rotation``


def _sample_count(f: BinaryIO, trak: tuple[int, int]) -> int:
    box = trak
    for kind in (b"mdia", b"minf", b"stbl"):
        found = _child(f, *box, kind)
        if found is None:
            return 0
        box = found
    for kind in (b"stsz", b"stz2"):
        table = _child(f, *box, kind)
        if table is not None:
            f.seek(table[0] + 8)  # version + flags, sample_size (stz2: reserved + field_size)
            return int(struct.unpack(">I", f.read(4))[0])
    return 0


def _media_duration_s(f: BinaryIO, trak: tuple[int, int]) -> float | None:
    mdia = _child(f, *trak, b"mdia")
    mdhd = _child(f, *mdia, b"mdhd") if mdia else None
    if mdhd is None:
        return None
    f.seek(mdhd[0])
    if f.read(1)[0] == 1:
        f.seek(mdhd[0] + 4 + 16)
        timescale, duration = struct.unpack(">IQ", f.read(12))
    else:
        f.seek(mdhd[0] + 4 + 8)
        timescale, duration = struct.unpack(">II", f.read(8))
    return duration / timescale if timescale else None


def video_track(path: Path) -> VideoTrack | None:
    """The first video track's frame count, duration and rotation from its box headers; None when there is none.

    Reads a handful of small boxes (``tkhd``, ``hdlr``, ``mdhd``, the ``stsz`` header), whatever
    the size of the index.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        first = next(_boxes(f, 0, size), None)
        moov = _child(f, 0, size, b"moov") if first is not None and first[0] in _FIRST_BOXES else None
        if moov is None:
            return None
        for kind, payload, box_end in _boxes(f, *moov):
            if kind != b"trak":
                continue
            trak = (payload, min(box_end, moov[1]))
            if _handler(f, trak) != b"vide":
                continue
            tkhd = _child(f, *trak, b"tkhd")
            return VideoTrack(
                sample_count=_sample_count(f, trak),
                duration_s=_media_duration_s(f, trak),
                rotation_deg=_matrix_rotation(f, tkhd) if tkhd else 0,
            )
    return None
