"""Seeded synthetic workloads: the peak-load scenario used by benchmarks and tests.

A national platform at its peak: thousands of agents with a few skills each,
tens of queues with two routing steps, five priorities, tens of thousands of
callers waiting.  :func:`peak_load` builds the configuration,
:meth:`PeakLoad.build` a loaded engine (every agent busy, ``waiting`` calls in
line) and :meth:`PeakLoad.stream` a recorded command stream: a closed-loop
driver that reacts to the engine's decisions (answers offered calls,
completes conversations, ends wrap-ups, abandons, new arrivals), so that
replaying the stream on a fresh loaded engine reproduces the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from .policy import Queue, RoutingStep

__all__ = ("PeakLoad", "peak_load")

Command = Tuple[Any, ...]


@dataclass(frozen=True)
class PeakLoad:
    seed: int
    skills: Tuple[str, ...]
    queues: Tuple[Queue, ...]
    agents: Tuple[Tuple[str, Dict[str, int]], ...]
    priorities: int
    waiting: int
    start: float           # time at which the loaded engine is ready
    dt: float              # time between two stream events

    def configure(self, engine: Any) -> Any:
        for s in self.skills:
            engine.add_skill(s)
        for q in self.queues:
            engine.add_queue(q)
        return engine

    def build(self, engine_factory: Callable[[], Any]) -> Tuple[Any, "Driver"]:
        """A configured engine with every agent busy and ``waiting`` calls in line.

        The warm-up history is spread over [0, start) so that waits, routing
        steps and the deadline heap look like a real peak, not one instant.
        """
        engine = self.configure(engine_factory())
        driver = Driver(engine, self)
        rng = np.random.default_rng(self.seed + 1)
        for ident, skills in self.agents:
            driver.apply(("login", ident, skills, 0.0))
        n_calls = len(self.agents) * 2 + self.waiting
        times = np.sort(rng.uniform(0.0, self.start, n_calls))
        for t in times:
            driver.new_call(float(t))
            # answer whatever was offered, so that agents end up busy
            while driver.offered:
                driver.apply(("answer", driver.offered[-1], float(t)))
        # trim to exactly `waiting` calls in line
        while len(driver.waiting) > self.waiting:
            victim = driver.waiting.items[int(driver.rng.integers(len(driver.waiting)))]
            driver.apply(("abandon", victim, self.start))
        driver.now = self.start
        driver.log.clear()
        return engine, driver


class _IndexedList:
    """A list with O(1) append and removal by value (order not kept)."""

    def __init__(self) -> None:
        self.items: List[Any] = []
        self.pos: Dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, x: Any) -> None:
        self.pos[x] = len(self.items)
        self.items.append(x)

    def remove(self, x: Any) -> None:
        i = self.pos.pop(x)
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.pos[last] = i



class Driver:
    """Closed-loop client of an engine: keeps track of calls and agents from decisions."""

    def __init__(self, engine: Any, load: PeakLoad) -> None:
        self.engine = engine
        self.load = load
        self.rng = np.random.default_rng(load.seed + 2)
        self.now = 0.0
        self.next_id = 0
        self.waiting = _IndexedList()
        self.offered: List[Any] = []
        self.connected = _IndexedList()
        self.wrapping = _IndexedList()
        self.call_agent: Dict[Any, Any] = {}
        self.log: List[Command] = []
        self.queue_names = [q.name for q in load.queues]

    def apply(self, cmd: Command) -> List[Any]:
        out = getattr(self.engine, cmd[0])(*cmd[1:])
        self.track(cmd, out)
        return out

    def track(self, cmd: Command, out: List[Any]) -> None:
        """Record a command applied to the engine (by apply or by the caller) and its decisions."""
        op = cmd[0]
        self.log.append(cmd)
        if op == "enqueue":
            self.waiting.add(cmd[1])
        elif op == "abandon":
            if cmd[1] in self.waiting.pos:
                self.waiting.remove(cmd[1])
            elif cmd[1] in self.call_agent:
                self.offered.remove(cmd[1])
                del self.call_agent[cmd[1]]
        elif op == "answer":
            self.offered.remove(cmd[1])
            self.connected.add(cmd[1])
        elif op == "complete":
            if cmd[1] in self.connected.pos:
                self.connected.remove(cmd[1])
            agent = self.call_agent.pop(cmd[1])
            if self.engine.agent_state(agent) == "wrap_up":
                self.wrapping.add(agent)
        elif op == "ready":
            self.wrapping.remove(cmd[1])
        elif op == "advance":
            for agent in [a for a in self.wrapping.items if self.engine.agent_state(a) != "wrap_up"]:
                self.wrapping.remove(agent)
        for d in out:
            if type(d).__name__ == "Assign":
                if d.call in self.waiting.pos:
                    self.waiting.remove(d.call)
                self.offered.append(d.call)
                self.call_agent[d.call] = d.agent
            elif type(d).__name__ == "Exit":
                self.waiting.remove(d.call)

    def new_call(self, t: float) -> List[Any]:
        call = self.next_id
        self.next_id += 1
        q = self.queue_names[int(self.rng.integers(len(self.queue_names)))]
        prio = int(self.rng.integers(self.load.priorities))
        return self.apply(("enqueue", call, q, t, prio))

    def step(self) -> None:
        """One event of the stream, chosen at random among those that apply."""
        self.now += self.load.dt
        t = self.now
        nd = self.engine.next_deadline()
        if nd is not None and nd <= t:
            # a real-time adapter wakes up at next_deadline(): so does the stream
            self.apply(("advance", t))
            return
        while True:
            u = float(self.rng.random())
            if u < 0.35:
                self.new_call(t)
                return
            if u < 0.55 and len(self.waiting):
                self.apply(("abandon", self.waiting.items[int(self.rng.integers(len(self.waiting)))], t))
                return
            if u < 0.70 and self.offered:
                self.apply(("answer", self.offered[0], t))
                return
            if u < 0.85 and len(self.connected):
                self.apply(("complete", self.connected.items[int(self.rng.integers(len(self.connected)))], t))
                return
            if len(self.wrapping):
                self.apply(("ready", self.wrapping.items[0], t))
                return

    def record(self, n_events: int) -> List[Command]:
        self.log.clear()
        for _ in range(n_events):
            self.step()
        out = list(self.log)
        self.log.clear()
        return out


def peak_load(seed: int = 0, *, agents: int = 2000, skills: int = 40, queues: int = 20, priorities: int = 5,
              waiting: int = 50_000, skills_per_agent: Tuple[int, int] = (3, 6), wrap_up: float = 30.0,
              dt: float = 0.002) -> PeakLoad:
    """The benchmark scenario: by default 2,000 agents, 40 skills, 3–6 skills per agent,
    20 queues with 2 routing steps, 5 priorities and 50,000 waiting calls."""
    if skills < 2 or skills_per_agent[1] > skills or not 1 <= skills_per_agent[0] <= skills_per_agent[1]:
        raise ValueError(f"skills_per_agent must lie within 1..skills, got {skills_per_agent!r} for {skills} skills")
    rng = np.random.default_rng(seed)
    skill_names = tuple(f"s{i:02d}" for i in range(skills))
    qs = []
    for i in range(queues):
        a, b = rng.choice(skills, size=2, replace=False)
        relax = float(rng.integers(30, 61))
        qs.append(Queue(f"q{i:02d}", steps=(
            RoutingStep(0, {skill_names[a]: 6, skill_names[b]: 1}),
            RoutingStep(relax, {skill_names[a]: 1}),
        ), wrap_up=wrap_up))
    ags = []
    for i in range(agents):
        k = int(rng.integers(skills_per_agent[0], skills_per_agent[1] + 1))
        chosen = rng.choice(skills, size=k, replace=False)
        ags.append((f"agent{i:05d}", {skill_names[s]: int(rng.integers(1, 11)) for s in chosen}))
    return PeakLoad(seed=seed, skills=skill_names, queues=tuple(qs), agents=tuple(ags), priorities=priorities,
                    waiting=waiting, start=600.0, dt=dt)


def replay(engine: Any, commands: Sequence[Command]) -> int:
    """Apply commands one Python call at a time; returns the number of decisions."""
    n = 0
    for cmd in commands:
        n += len(getattr(engine, cmd[0])(*cmd[1:]))
    return n
