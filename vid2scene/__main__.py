"""``python -m vid2scene`` runs the command line."""

import sys

from vid2scene.cli import main

sys.exit(main())
