"""asv benchmarks of live reconfiguration (docs/reload.md): set_agent on every agent of a loaded
engine, update_queue under the calls waiting in a queue."""

import acd
from acd.workload import peak_load

from .common import RELOAD_AGENTS, SEED


class Reload:
    """1,000 busy agents, 20,000 calls in line over 10 queues (about 2,000 in the first)."""

    number = 1
    repeat = 10
    timeout = 300

    def setup(self):
        self.load = peak_load(SEED, agents=RELOAD_AGENTS, skills=20, queues=10, waiting=20_000)
        self.engine, _ = self.load.build(acd.Engine)
        self.now = self.load.start + 1.0
        self.k = 0

    def time_set_agent_all(self):
        """Every agent to a new profile (levels shifted by one): one reload changing 1,000 agents."""
        self.k += 1
        k = self.k
        for ident, skills in self.load.agents:
            self.engine.set_agent(ident, {s: 1 + (lvl - 1 + k) % 10 for s, lvl in skills.items()}, self.now)

    def time_update_queue(self):
        """New settings for the busiest queue: its waiting calls out of line and back at their rank."""
        self.k += 1
        q = self.load.queues[0]
        self.engine.update_queue(acd.Queue(q.name, steps=q.steps, service_level=(0.8, 60.0 + self.k % 2)), self.now)
