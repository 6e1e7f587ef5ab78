"""Export sizes and clean-up of one gs run (a benchmark, not a test): each format beside ``scene.ply``.

Trains splats on a scene directory with a preset (``train_splats``, so clean-up, crop, levelling and every
export run as in a job) and prints, from its ``report.json``: each file's bytes, bytes a splat and its
size relative to ``scene.ply`` (the reference); the splats each clean-up step removed; held-out PSNR
before and after clean-up; and the exported frame. No timing is claimed.

Usage:
    python bench/bench_exports.py SCENE_DIR [--preset preview] [--out DIR]
    (SCENE_DIR from ``vid2scene sfm`` on the garden capture, ``tests.fixtures.data_files.GARDEN_VIDEO``)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from gs_worker.pipeline import train_splats
from shared.artifacts import PLY_FILE, REPORT_FILE
from shared.options.gs import SplatOptions


def print_report(report: dict[str, Any]) -> None:
    """The tables of one ``report.json``."""
    files = {f["name"]: f for f in report["files"]}
    reference = files[PLY_FILE]["bytes"]
    print(f"{'file':<22}{'bytes':>12}{'bytes/splat':>13}{'vs scene.ply':>14}")
    for name, f in files.items():
        print(f"{name:<22}{f['bytes']:>12,}{f['bytes'] / max(f['splats'], 1):>13.1f}{f['bytes'] / reference:>14.3f}")
    cleanup = report["cleanup"]
    print(f"\nclean-up: {cleanup['input_count']:,} splats in, {cleanup['kept_count']:,} kept")
    for step, count in cleanup["removed"].items():
        print(f"  {step:<12}{count:>8,}")
    print(
        f"\nheld-out PSNR {report['heldout_psnr_before_cleanup']:.2f} dB before clean-up, "
        f"{report['heldout_psnr']:.2f} dB after (overlay pixels left out: {report['overlay_pixels']})"
    )
    frame = report["export_frame"]
    print(
        f"frame: ground from {frame['ground_from']}, levelled {frame['level_deg']:.1f}°, "
        f"1 unit = {frame['colmap_units_per_unit']:.4g} COLMAP units"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene_dir", type=Path)
    parser.add_argument("--preset", default="preview", choices=["preview", "standard", "high"])
    parser.add_argument("--out", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    args = parser.parse_args()
    options = SplatOptions.from_preset(args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "gs"
        train_splats(args.scene_dir, out, options)
        print_report(json.loads((out / REPORT_FILE).read_text()))


if __name__ == "__main__":
    main()
