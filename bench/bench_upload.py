"""Upload throughput and the web server's peak memory for a 1 GB upload, beside a plain file copy.

The upload goes through the public API (``POST /v1/jobs``, multipart, streamed by
:class:`vid2scene.client.Vid2SceneClient`) to ``python -m web_server`` on loopback; the reference is
``shutil.copyfile`` of the same bytes on the same disk. The file is sparse (reading it costs no disk
I/O on either side), so both numbers are write throughput plus the per-byte work of each path.

By default the payload is not a video: the server streams it to disk, probes it and answers 422
``INVALID_VIDEO``, so the time covers the whole transfer up to the probe and nothing after it.
``--valid`` sends a real H.264 MP4 padded with a 1 GB ``free`` box instead, so the server also
stores it in GridFS and creates the job (SecantusDB's own memory is not counted). The server
writes the body to GridFS while receiving it, so either way the GridFS writes are in the time.

A third row times the store's own ceiling: the same bytes inserted straight into the same
SecantusDB as 1 MiB GridFS chunk documents, one ``insert_one`` each, with no HTTP, parsing or
hashing: the upload cannot be faster than that.

Run: ``python bench/bench_upload.py [--size-mb 1024] [--valid]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service_process import ServerProcess, rss_bytes
from vid2scene.client import ServerError, Vid2SceneClient

MB = 1024 * 1024


def make_payload(path: Path, size: int, *, valid: bool) -> Path:
    """A sparse file of ``size`` bytes: zeros, or a small real MP4 followed by one big ``free`` box."""
    with path.open("wb") as f:
        if valid:
            from shared.synthetic_scene import render_capture

            video = render_capture(path.parent / "small", width=64, height=48, n_frames=12, fps=12.0).video
            head = video.read_bytes()
            f.write(head)
            f.write(struct.pack(">I4s", size - len(head), b"free"))
        f.truncate(size)
    return path


class PeakRss:
    """Samples a process's resident memory every 20 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


def store_ceiling_s(mongo_url: str, payload: Path) -> float:
    """Seconds to insert ``payload`` into a scratch collection as 1 MiB GridFS chunk documents."""
    import pymongo
    from bson import ObjectId

    with pymongo.MongoClient[dict[str, Any]](mongo_url) as client:
        chunks = client["bench_ceiling"]["files.chunks"]
        file_id = ObjectId()
        t0 = time.perf_counter()
        with payload.open("rb") as f:
            n = 0
            while data := f.read(MB):
                chunks.insert_one({"files_id": file_id, "n": n, "data": data})
                n += 1
        seconds = time.perf_counter() - t0
        client.drop_database("bench_ceiling")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="payload size in MiB")
    parser.add_argument("--valid", action="store_true", help="send a padded real video (stored in GridFS)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    size = args.size_mb * MB

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        payload = make_payload(root / "payload.mp4", size, valid=args.valid)

        t0 = time.perf_counter()
        shutil.copyfile(payload, root / "copy.bin")
        copy_s = time.perf_counter() - t0
        (root / "copy.bin").unlink()

        with ServerProcess(root / "service", max_upload_bytes=size + 64 * MB) as server:
            idle_rss = rss_bytes(server.pid)
            with Vid2SceneClient(server.url, timeout_s=600) as client, PeakRss(server.pid) as rss:
                t0 = time.perf_counter()
                try:
                    job = client.submit(payload, preset="preview")
                    outcome = f"202 job {job.id}"
                except ServerError as exc:
                    outcome = f"{exc.status} {exc.code}"
                upload_s = time.perf_counter() - t0
            assert server.mongo is not None
            ceiling_s = store_ceiling_s(server.mongo.url, payload)

    rows = [
        ("plain file copy (shutil.copyfile)", copy_s, None, None),
        ("store ceiling (1 MiB chunk inserts, no HTTP)", ceiling_s, None, None),
        (f"POST /v1/jobs ({outcome})", upload_s, idle_rss, rss.peak),
    ]
    print(f"\n{args.size_mb} MiB payload, {'padded H.264 MP4' if args.valid else 'not a video (stops at the probe)'}")
    print(f"{'path':<50} {'seconds':>8} {'MB/s':>8} {'ratio':>7} {'server RSS idle':>16} {'server RSS peak':>16}")
    for name, seconds, idle, peak in rows:
        ratio = seconds / copy_s
        idle_txt = f"{idle / MB:.0f} MiB" if idle else "-"
        peak_txt = f"{peak / MB:.0f} MiB" if peak else "-"
        print(f"{name:<50} {seconds:8.2f} {size / MB / seconds:8.0f} {ratio:6.2f}x {idle_txt:>16} {peak_txt:>16}")
    print(f"peak server memory grew by {(rss.peak - idle_rss) / MB:.0f} MiB for a {args.size_mb} MiB upload")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
