"""``acd serve``: the ACD as a service for Asterisk.

One asyncio process runs the engine (journaled in SQLite), a FastAGI server
(plus a UNIX-socket relay for classic AGI scripts), an optional AMI client,
and a small HTTP endpoint (``/metrics``, ``/snapshot.json``, dashboard)::

    acd serve --config acd.toml [--log-level debug|info|warning|error]
    python -m acd.service --config acd.toml

Logs are JSON lines on stderr.  SIGTERM or SIGINT drains: new calls are
refused, ringing and connected calls get ``[service] shutdown_timeout``
seconds to end, then the journal is closed.  Exit status: 0 after a clean
stop, 2 for a bad configuration, 1 when the service cannot start (port in
use, journal unreadable...).  See ``examples/asterisk/README.md`` for the
Asterisk side.

One module per concern: ``app`` (composition root: start, drain, stop),
``main`` (command line, signals), ``commands`` (the single writer: engine
command -> journal -> decisions), ``counters`` and ``callbacks`` (read models
rebuilt from the journal; the call-back dialler), ``calls`` (callers on hold),
``agi_routes`` / ``agent_routes`` (FastAGI), ``prompts``, ``reconcile`` (with
Asterisk's live channels), ``watchdog`` (offers and dials with no outcome),
``supervisor`` (actions by hand), ``status`` (the read model of the pages),
``http/`` (server, auth, pages and API, metrics, dashboard), ``config``, ``logs``.
"""

from .app import Dispatcher
from .config import ServiceConfig, config_from_dict, load_config
from .main import main

__all__ = ("Dispatcher", "ServiceConfig", "load_config", "config_from_dict", "main")
