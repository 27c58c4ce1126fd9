"""``python -m acd.service --config acd.toml``: same as ``acd serve``."""

import sys

from . import main

sys.exit(main())
