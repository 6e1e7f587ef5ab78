"""Prometheus metrics in the text exposition format: counters kept in process, gauges read from MongoDB.

Every label value comes from a closed set, so no request can add a series: a method outside
:data:`HTTP_METHODS` is counted as ``other``, and so is a path that matched no route (the route label
is otherwise the route's template, e.g. ``/v1/jobs/{job_id}``).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Final

from shared.messages import STAGES
from web_server.models import JOB_STATUSES, STAGE_STATUSES
from web_server.store import Store

#: The methods counted under their own name (RFC 9110's, plus PATCH); any other is ``other``.
HTTP_METHODS: Final[frozenset[str]] = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
#: The label of an unknown method and of a path that matched no route.
OTHER: Final[str] = "other"


def method_label(method: str) -> str:
    """``method`` when it is a known HTTP method, else ``other``."""
    return method if method in HTTP_METHODS else OTHER


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


class Metrics:
    """Counters of one server process (requests, uploads), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.uploads: Counter[str] = Counter()
        self.upload_bytes = 0

    def count_request(self, method: str, route: str | None, status: int) -> None:
        """Count one answered request by method, route template and status.

        Args:
            method: the request method; anything outside :data:`HTTP_METHODS` counts as ``other``.
            route: the matched route's template, or None (counted as ``other``).
            status: the answered status; outside 100–599 it counts as 500.
        """
        key = (method_label(method), route or OTHER, status if 100 <= status <= 599 else 500)
        with self._lock:
            self.requests[key] += 1

    def count_upload(self, result: str, size: int = 0) -> None:
        """Count one upload by outcome (``accepted``, ``too_large``, ``invalid_video``, ...) and its bytes."""
        with self._lock:
            self.uploads[result] += 1
            if result == "accepted":
                self.upload_bytes += size

    def render(self, store: Store) -> str:
        """The metrics page: job and stage gauges from MongoDB, then this process's counters."""
        jobs, stages = store.status_counts()
        lines = ["# HELP vid2scene_jobs Jobs by status.", "# TYPE vid2scene_jobs gauge"]
        lines += [f"vid2scene_jobs{_labels(status=s)} {jobs[s]}" for s in JOB_STATUSES]
        lines += ["# HELP vid2scene_stages Stages by stage and status.", "# TYPE vid2scene_stages gauge"]
        lines += [
            f"vid2scene_stages{_labels(stage=name, status=s)} {stages[(name, s)]}"
            for name in STAGES
            for s in STAGE_STATUSES
        ]
        with self._lock:
            uploads = dict(self.uploads)
            upload_bytes = self.upload_bytes
            requests = dict(self.requests)
        lines += ["# HELP vid2scene_uploads_total Uploads by outcome.", "# TYPE vid2scene_uploads_total counter"]
        lines += [f"vid2scene_uploads_total{_labels(result=r)} {n}" for r, n in sorted(uploads.items())]
        lines += [
            "# HELP vid2scene_upload_bytes_total Bytes of accepted uploads.",
            "# TYPE vid2scene_upload_bytes_total counter",
            f"vid2scene_upload_bytes_total {upload_bytes}",
        ]
        lines += [
            "# HELP vid2scene_http_requests_total Answered requests.",
            "# TYPE vid2scene_http_requests_total counter",
        ]
        lines += [
            f"vid2scene_http_requests_total{_labels(method=m, route=r, status=str(s))} {n}"
            for (m, r, s), n in sorted(requests.items())
        ]
        return "\n".join(lines) + "\n"
