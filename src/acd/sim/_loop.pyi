# Stub of the compiled event loop (src/acd/sim/_loop.pyx); checked by mypy.stubtest in tests/test_typing.py.
from typing import Any, Dict, List, Tuple, final

import numpy as np

from .._core import Engine

@final
class Loop:
    events: int
    announcements: int
    in_system: int
    t_last: float
    sample_t: List[float]
    sample_w: List[List[int]]
    sample_logged: List[int]
    sample_working: List[int]
    def __init__(self, eng: Engine, calls: Dict[str, Any], queues: Dict[str, Any], agents: Dict[str, Any],
                 settings: Dict[str, Any], events: List[Tuple[float, int, int]]) -> None: ...
    def run(self) -> int: ...
    def intervals(self) -> np.ndarray: ...
    def close_agents(self, t_last: float) -> None: ...
