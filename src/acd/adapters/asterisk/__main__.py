"""Classic AGI entry point: the ``acd-agi`` console script, or ``python -m acd.adapters.asterisk``.

Asterisk calls it as ``AGI(acd-agi,enqueue?queue=support)`` (link the
installed ``acd-agi`` into ``agi-bin``, see ``examples/asterisk/README.md``);
:mod:`acd.adapters.asterisk.script` documents the relay, the options and the
exit statuses.

Signals first: the SIGHUP handler below is installed by the first statements
this module runs, before it imports anything else (``_signal`` is built into
the interpreter and already loaded), so a hang-up during start-up is recorded
and relayed once the dispatcher knows the call.  What runs before it is the
interpreter's own start-up and the three package ``__init__`` modules, which
import nothing (``acd`` loads its names lazily).  The handler stays in place
until the process exits.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same functions (the C module has no stub)
else:
    import _signal  # built in and already loaded: `signal` would import enum first

_early_hangups: list[int] = []


def _on_early_sighup(signum: int, frame: object) -> None:
    _early_hangups.append(signum)


if hasattr(_signal, "SIGHUP"):
    _signal.signal(_signal.SIGHUP, _on_early_sighup)

import os  # noqa: E402  (after the handler, on purpose)
import sys  # noqa: E402


def run() -> None:
    """Run the classic AGI script and exit with its status.

    The process leaves with ``os._exit`` once its output is flushed: the
    interpreter's clean-up would cost each AGI step another 2-3 ms of CPU
    and has nothing to do (the relay socket is closed, no file is open).
    """
    from .script import main

    status = main(early_hangups=_early_hangups)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # Asterisk closed our end: nothing more to say
            pass
    os._exit(status)


if __name__ == "__main__":
    run()
