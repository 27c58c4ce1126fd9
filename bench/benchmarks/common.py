"""Benchmark inputs.  Only append to this file: changing an existing input
breaks comparability with the recorded history (numpy's rule)."""

from acd.workload import peak_load

SEED = 0

# the peak-load scenario: 2,000 agents, 40 skills, 3-6 skills each,
# 20 queues x 2 routing steps, 5 priorities; waiting calls as parameter
PEAK = dict(agents=2000, skills=40, queues=20, priorities=5)
WAITING = [1_000, 50_000]
STREAM_EVENTS = 100_000

# small enough for the plain-Python oracle
REFERENCE = dict(agents=200, skills=20, queues=10, priorities=5, waiting=1_000)
REFERENCE_EVENTS = 2_000


def peak(waiting):
    return peak_load(SEED, waiting=waiting, **PEAK)

# call-back / announcement features on (appended: issue 3)
CALLBACK_WAITING = 20_000

# simulator: M/M/n+M at critical load, talk 300 s, patience 180 s (appended: issue 4)
SIM_CALLS = 100_000
SIM_AGENTS = [50, 500]


def mmn_m(agents, calls=SIM_CALLS):
    import acd
    from acd.sim import AgentGroup, CallType, Dist, Scenario
    span = calls * 300.0 / agents
    return Scenario(name="mmn+m", start=0.0, end=span, interval=span, queues=(acd.Queue("q"),),
                    call_types=(CallType("call", "q", 1.0, Dist.exponential(300.0), Dist.exponential(180.0)),),
                    agents=(AgentGroup("agents", agents),), arrivals=(float(calls),))

# classic AGI script against a real acd serve (appended: issue 17): sequential calls for the
# per-process figures; the burst of bench/agi_script.py
AGI_SAMPLES = 20
AGI_BURST_CALLS = 100
AGI_BURST_SECONDS = 2.0
AGI_AGENTS = 100

# PostgreSQL journal group commit (appended: the PostgreSQL journal issue): producer threads appending
# engine commands to a promoted PostgresJournal for JOURNAL_PG_SECONDS after a warm-up
JOURNAL_PG_PRODUCERS = 16
JOURNAL_PG_SECONDS = 2.0
JOURNAL_PG_WARMUP = 0.3

# live reconfiguration (appended: issue 15 part 4): agents changed by one reload
RELOAD_AGENTS = 1000
