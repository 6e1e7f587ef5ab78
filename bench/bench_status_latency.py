"""``GET /v1/jobs/{id}`` latency at 50 and 200 concurrent clients, beside ``GET /healthz`` under the same load.

``python -m web_server`` runs on loopback with SecantusDB as the store (local mode: no API keys, no
workers, so the job stays queued and its document is read from the store on every call). Each
client is a thread with its own keep-alive connection doing a fixed number of requests; the
reference endpoint ``/healthz`` touches no store, so the ratio is what reading and shaping a job
costs.

Each client count is one row pair in the same run (same server, same store, same queued job).

Run: ``python bench/bench_status_latency.py [--clients 50,200] [--requests 40]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service_process import ServerProcess
from vid2scene.client import Vid2SceneClient


def hammer(url: str, clients: int, requests: int) -> tuple[list[float], float]:
    """``clients`` threads each GET ``url`` ``requests`` times; returns every latency (s) and the wall time."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        # The keep-alive connection opens on the first request: one opened before the barrier may sit
        # idle past uvicorn's 5 s keep-alive timeout while 200 threads line up, and be reset.
        with httpx.Client(timeout=30) as http:
            start.wait()
            for _ in range(requests):
                t0 = time.perf_counter()
                try:
                    response = http.get(url)
                except httpx.TransportError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies[index].append(time.perf_counter() - t0)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return [x for per in latencies for x in per], wall


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="50,200", help="comma-separated concurrent client counts")
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    args = parser.parse_args()
    client_counts = [int(n) for n in args.clients.split(",")]

    from shared.synthetic_scene import render_capture

    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "service") as server:
        video = render_capture(Path(tmp) / "video", width=64, height=48, n_frames=12, fps=12.0).video
        with Vid2SceneClient(server.url) as api:
            job = api.submit(video, methods=("gs", "nerf"), preset="preview", name="latency")
        rows: list[tuple[int, str, list[float], float]] = []
        for clients in client_counts:
            for label, path in (("GET /healthz (reference)", "/healthz"), ("GET /v1/jobs/{id}", f"/v1/jobs/{job.id}")):
                hammer(server.url + path, 4, 10)  # warm up
                latencies, wall = hammer(server.url + path, clients, args.requests)
                rows.append((clients, label, latencies, wall))

    print(f"\n{args.requests} requests per client, loopback, one uvicorn worker")
    print(f"{'clients':>7} {'call':<28} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s':>8} {'p50 ratio':>10}")
    ref_p50 = 0.0
    for clients, label, latencies, wall in rows:
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        if label.startswith("GET /healthz"):
            ref_p50 = p50
        print(
            f"{clients:>7} {label:<28} {1e3 * p50:8.1f} {1e3 * p99:8.1f} {1e3 * statistics.fmean(latencies):8.1f}"
            f" {len(latencies) / wall:8.0f} {p50 / ref_p50:9.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
