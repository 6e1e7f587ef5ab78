"""``python -m gs_worker``: consume ``stage.gs`` with the settings in the ``VID2SCENE_*`` environment."""

from __future__ import annotations

import sys

from gs_worker.consumer import make_spec
from shared.worker_process import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(lambda settings: make_spec(settings.device)))
