"""Progress bars in the terminal: one per stage of a job (with its estimated time left), one for an upload or a download."""

from __future__ import annotations

import sys
from typing import IO, Self

from tqdm import tqdm

from shared.eta import describe_eta
from vid2scene.client import BytesProgressFn, JobView

_BAR_FORMAT = "{desc:<22} {percentage:3.0f}%|{bar:30}| {postfix}"


class StageBars:
    """One bar per stage of a job, updated from job snapshots; closed at the end.

    Args:
        stream: where the bars are drawn (stderr by default, so stdout stays scriptable).
        disable: draw nothing (e.g. ``--quiet``); :meth:`update` still prints stage changes.
    """

    def __init__(self, stream: IO[str] | None = None, *, disable: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.disable = disable
        self._bars: dict[str, tqdm] = {}
        self._job_line: tqdm | None = None
        self._last_status: dict[str, str] = {}

    def update(self, job: JobView) -> None:
        """Redraw the bars from a snapshot of the job."""
        for stage in job.stages:
            bar = self._bars.get(stage.name)
            if bar is None:
                bar = tqdm(
                    total=100,
                    desc=stage.name,
                    position=len(self._bars),
                    file=self.stream,
                    bar_format=_BAR_FORMAT,
                    disable=self.disable,
                    leave=True,
                    dynamic_ncols=True,
                )
                self._bars[stage.name] = bar
            attempt = f" (attempt {stage.attempt})" if stage.attempt > 1 else ""
            bar.set_description_str(f"{stage.name} {stage.status}{attempt}", refresh=False)
            eta = describe_eta(stage.eta_seconds) if stage.status == "running" else ""
            bar.set_postfix_str(" · ".join(part for part in (eta, stage.message[:60]) if part), refresh=False)
            target = 100.0 if stage.status == "succeeded" else round(100.0 * stage.progress, 1)
            bar.n = max(0.0, min(100.0, target))
            bar.refresh()
            if self.disable and self._last_status.get(stage.name) != stage.status:
                print(f"{stage.name}: {stage.status}{attempt}", file=self.stream)
            self._last_status[stage.name] = stage.status
        self._update_job_line(job)

    def _update_job_line(self, job: JobView) -> None:
        """The job's overall estimate on a line below the stage bars ("job: about 3 min left")."""
        if job.eta_seconds is None or self.disable:
            return
        if self._job_line is None:
            self._job_line = tqdm(
                total=0, position=len(self._bars), file=self.stream, bar_format="{desc}", leave=True, dynamic_ncols=True
            )
        text = describe_eta(job.eta_seconds) if not job.done else job.status
        self._job_line.set_description_str(f"job: {text} (estimate)" if not job.done else f"job: {text}")

    def close(self) -> None:
        """Close every bar (leaving them drawn)."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
        if self._job_line is not None:
            self._job_line.close()
            self._job_line = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bytes_bar(label: str, total: int | None, *, stream: IO[str] | None = None, disable: bool = False) -> tqdm:
    """A bar counting bytes (shown as KB/MB/GB per second)."""
    return tqdm(
        total=total,
        desc=label,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=stream or sys.stderr,
        disable=disable,
        leave=True,
        dynamic_ncols=True,
    )


def bytes_callback(bar: tqdm) -> BytesProgressFn:
    """A ``(done, total)`` callback that moves ``bar``."""

    def on_bytes(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return on_bytes
