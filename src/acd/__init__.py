"""acd: automatic call distribution engine.

The compiled :class:`Engine` decides which waiting call goes to which agent;
every command takes ``now`` and returns the decisions it caused.  See
``docs/engine.md`` for the semantics.
"""

from ._core import Announce, Assign, DialBack, Engine, Exit, OfferCallback, Overflow
from .errors import (AcdError, DuplicateId, InvalidInput, InvalidState, TimeWentBackwards, UnknownAgent,
                     UnknownCall, UnknownQueue, UnknownSkill)
from .ewt import WaitEstimate
from .patience import PatienceEstimate, kaplan_meier
from .policy import AGENT_STRATEGIES, CALL_CHOICES, Queue, RoutingStep

__version__ = "0.1.0"

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
