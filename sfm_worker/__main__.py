"""``python -m sfm_worker``: consume ``stage.sfm`` with the settings in the ``VID2SCENE_*`` environment."""

from __future__ import annotations

import sys

from sfm_worker.consumer import make_spec
from shared.worker_process import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(lambda _settings: make_spec()))
