"""Virtual hold end to end: the engine offers a call-back, the caller accepts,
keeps their place, and is dialled back when an agent is free.

    python examples/virtual_hold.py
"""

import acd

engine = acd.Engine(call_choice="cmu_theta")
engine.add_queue(acd.Queue("info", callback_threshold=90, callback_attempts=2, callback_retry_delay=60,
                           announce_on_join=True, expected_handle_time=420, expected_patience=150))
engine.login("agent-1", {}, now=0.0)

# the only agent is busy with a first caller
print(engine.enqueue("caller-0", "info", now=0.0))
engine.answer("caller-0", now=2.0)

# four more callers: each hears its place and wait; long waits get a call-back offer
for i in range(1, 5):
    for decision in engine.enqueue(f"caller-{i}", "info", now=10.0 * i):
        print(decision)

engine.accept_callback("caller-2", now=45.0)           # pressed 1: hangs up, keeps the place
print("caller-2 is", engine.call_state("caller-2"))

# the agent frees up three times; caller-2's turn comes as a DialBack
t = 400.0
for _ in range(3):
    for decision in engine.complete(engine.snapshot()["agents"]["agent-1"]["call"], now=t):
        print(decision)
        if isinstance(decision, acd.DialBack):
            engine.callback_answered(decision.call, now=t + 15)
        else:
            engine.answer(decision.call, now=t + 5)
    t += 400.0

print(engine.snapshot()["queues"]["info"]["callbacks"])
print("patience estimate:", engine.patience("info"))
