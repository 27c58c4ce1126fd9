"""``python -m acd``: the ``acd`` command (see :mod:`acd.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
