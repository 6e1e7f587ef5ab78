"""The upload check on a decode bomb: the header probe beside the full probe the server used before.

The bomb is a valid H.264 video of many 16×16 frames (one encoded keyframe muxed again and again),
in MP4 and in MKV. ``probe_video`` (now the SfM worker's check) demuxes every packet and decodes the
first frame; ``probe_video_header`` (the web server's) reads headers and index only and refuses the
file as ``VIDEO_TOO_LONG`` at the default 36,000-frame limit. Peak memory is the growth of this
process's resident set while probing.

Run: ``python bench/bench_probe.py [--frames 200000]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_upload import PeakRss
from bench.service_process import rss_bytes
from shared.errors import StageError
from shared.settings import Settings
from shared.video import VideoLimits, probe_video, probe_video_header
from tests.fixtures.videos import decode_bomb

MB = 1024 * 1024


def timed(probe: Callable[[Path], object], path: Path) -> tuple[float, int, str]:
    """Seconds, peak RSS growth in bytes, and the outcome of ``probe(path)``."""
    before = rss_bytes(os.getpid())
    with PeakRss(os.getpid()) as rss:
        t0 = time.perf_counter()
        try:
            probe(path)
            outcome = "accepted"
        except StageError as exc:
            outcome = exc.code.value
        seconds = time.perf_counter() - t0
    return seconds, rss.peak - before, outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames in the bomb")
    args = parser.parse_args()
    defaults = Settings()
    limits = VideoLimits(
        max_frames=defaults.max_video_frames,
        max_duration_s=defaults.max_video_duration_s,
        max_pixel_rate=defaults.max_video_pixel_rate,
    )
    print(f"\ndecode bomb: {args.frames} frames of 16x16 H.264, default limits")
    print(f"{'file':<22} {'probe':<34} {'seconds':>9} {'peak RSS +':>11} {'ratio':>9}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".mp4", ".mkv"):
            bomb = decode_bomb(Path(tmp) / f"bomb{suffix}", args.frames)
            label = f"{bomb.name} ({bomb.stat().st_size / MB:.1f} MB)"
            header = timed(lambda p: probe_video_header(p, limits), bomb)
            full = timed(probe_video, bomb)
            for name, (seconds, grew, outcome) in (
                ("probe_video (full, before)", full),
                ("probe_video_header (upload check)", header),
            ):
                ratio = seconds / full[0]
                print(f"{label:<22} {name:<34} {seconds:9.4f} {grew / MB:8.0f} MiB {ratio:8.4f}x  {outcome}")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
