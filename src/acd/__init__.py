"""acd: automatic call distribution engine.

The compiled :class:`Engine` decides which waiting call goes to which agent;
every command takes ``now`` and returns the decisions it caused.  See
``docs/engine.md`` for the semantics.

The public names below load on first use (``import acd`` costs almost
nothing; ``acd.Engine`` loads the compiled core, ``acd.kaplan_meier`` numpy):
a classic AGI script imports this package on its way to
:mod:`acd.adapters.asterisk` and must start fast.
"""

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._core import Announce, Assign, DialBack, Engine, Exit, OfferCallback, Overflow
    from .errors import (AcdError, DuplicateId, InvalidInput, InvalidState, TimeWentBackwards, UnknownAgent,
                         UnknownCall, UnknownQueue, UnknownSkill)
    from .ewt import WaitEstimate
    from .patience import PatienceEstimate, kaplan_meier
    from .policy import AGENT_STRATEGIES, CALL_CHOICES, Queue, RoutingStep

__all__ = (
    "Engine",
    "Queue",
    "RoutingStep",
    "Assign",
    "Overflow",
    "Exit",
    "Announce",
    "OfferCallback",
    "DialBack",
    "WaitEstimate",
    "PatienceEstimate",
    "kaplan_meier",
    "AGENT_STRATEGIES",
    "CALL_CHOICES",
    "AcdError",
    "InvalidInput",
    "InvalidState",
    "DuplicateId",
    "TimeWentBackwards",
    "UnknownAgent",
    "UnknownCall",
    "UnknownQueue",
    "UnknownSkill",
    "__version__",
)

# public name -> the submodule that defines it
_MODULE_OF = {
    **dict.fromkeys(("Engine", "Assign", "Overflow", "Exit", "Announce", "OfferCallback", "DialBack"), "_core"),
    **dict.fromkeys(("Queue", "RoutingStep", "AGENT_STRATEGIES", "CALL_CHOICES"), "policy"),
    **dict.fromkeys(("AcdError", "InvalidInput", "InvalidState", "DuplicateId", "TimeWentBackwards", "UnknownAgent",
                     "UnknownCall", "UnknownQueue", "UnknownSkill"), "errors"),
    "WaitEstimate": "ewt",
    "PatienceEstimate": "patience",
    "kaplan_meier": "patience",
}


if not TYPE_CHECKING:  # type checkers see the imports above, and flag unknown names
    def __getattr__(name: str) -> object:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
