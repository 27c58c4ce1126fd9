"""Classic AGI entry point: ``python -m acd.adapters.asterisk [--socket PATH]``.

Point the dialplan at a small executable wrapper, e.g. ``agi-bin/acd-agi``::

    #!/bin/sh
    exec python3 -m acd.adapters.asterisk "$@"

and call it as ``AGI(acd-agi,enqueue?queue=support)``.  See
:mod:`acd.adapters.asterisk.agi` for the relay protocol and exit statuses.
"""

import os
import sys

from .agi import main

status = main()
try:
    sys.stdout.flush()
except OSError:  # Asterisk closed our stdout: no noise at interpreter exit
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
sys.exit(status)
