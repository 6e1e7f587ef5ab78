"""Stage outputs that appear complete or not at all: write into a temporary sibling, rename into place.

Every stage (SfM its scene directory, the training stages their files) writes into a fresh hidden
sibling of its output directory and publishes the entries only when every one is finished, so a
failed or cancelled run leaves the output directory as it was (absent, or holding a previous run's
files) and a run repeated gives one result.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_output_dir(out_dir: Path, names: Sequence[str]) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out_dir``; publish ``names`` from it when the block completes.

    Publishing is one rename of the whole directory when ``out_dir`` is absent or empty, otherwise one
    atomic rename per entry in the order of ``names`` (put the file that marks completion, the report,
    last); an entry that is a folder, or replaces one, first moves the old entry aside, so a rerun
    replaces a previous folder whole. Other entries of ``out_dir`` are kept. The temporary directory
    (with whatever was moved aside) is removed in every case; an exception from the block propagates
    and publishes nothing.

    Args:
        out_dir: the directory the entries belong in; its parent is created if needed.
        names: the entries (files or folders, directly in the temporary directory) the block writes.

    Yields:
        The temporary directory (``<parent>/.<out_dir name>.partial-<random>``).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    work_dir.chmod(0o755)  # mkdtemp makes it private; the published directory is an ordinary one
    try:
        yield work_dir
        _publish(work_dir, out_dir, names)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _publish(work_dir: Path, out_dir: Path, names: Sequence[str]) -> None:
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    if not out_dir.exists():
        os.replace(work_dir, out_dir)
        return
    for name in names:
        source, target = work_dir / name, out_dir / name
        if (source.is_dir() or (target.is_dir() and not target.is_symlink())) and os.path.lexists(target):
            os.replace(target, work_dir / f".replaced-{name}")  # removed with work_dir
        os.replace(source, target)
