# Declarations of the compiled engine's C records (see _core.pyx for the invariants).

cimport cython
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t


ctypedef struct Entry:
    double t          # primary key (time, or idle key)
    uint64_t seq      # tie-break: enqueue order (calls), login order (agents), index (queues)
    int32_t idx       # slot of the call / agent / bucket / queue held


ctypedef struct Heap:
    Entry* a
    int32_t n
    int32_t cap


ctypedef struct CallRec:
    void* key         # the caller's id (a str or int; owned reference)
    int64_t hash      # hash(key), for the id table
    double entry      # entry into its current queue: rank and deadlines count from here
    double arrival    # first arrival: waits reported to users count from here; after answer, answer time
    uint64_t seq
    int32_t queue
    int32_t bucket    # bucket while in line, else -1
    int32_t agent     # agent slot while offered/dialing/connected, else -1
    int32_t extra     # id of the call's own requirements (0 = none)
    int16_t step
    int16_t attempts  # dial-back attempts made
    int8_t priority
    int8_t state
    int8_t virtual    # a call-back: the caller hung up and keeps their place
    int8_t held       # waiting for its preferred agents only (in their _pref heaps, not in a bucket heap)
    int8_t npref      # while held: how many of its preferred agents are still logged in


ctypedef struct AgentRec:
    double since      # time of the last state change
    double login
    double key        # idle ordering key, fixed when it became available
    double busy_time  # reserved + busy + wrap-up, closed periods only
    uint64_t seq
    uint64_t last_offered
    int32_t group
    int32_t call
    int32_t answered
    int8_t state
    int8_t after_call # pause or log-out asked while ringing or talking (AFTER_*), carried out when free


ctypedef struct Bucket:
    Heap heap         # calls in line, by (entry, seq)
    double offset     # offset from entry of the next time event (INFINITY if none)
    int32_t queue
    int32_t step
    int32_t priority
    int32_t extra
    int32_t req       # effective requirement id (step requirements merged with the call's own)
    int32_t req_off   # required skills (for highest_level scoring) in _req_skills
    int32_t req_len
    int8_t virtual    # holds call-backs (no max-wait exit, no announcements)
    bint exit_next    # the next time event is the max-wait exit


ctypedef struct QueueRec:
    double ageing     # 0 when priority does not age
    double wrap_up
    double sl_seconds
    double cost
    double prior_aht
    double prior_patience
    double cb_threshold   # < 0: no threshold
    double cb_risk        # < 0: no risk threshold
    double retry_delay
    double announce_every # 0: no periodic announcement
    double tick_t0        # announcements fall on tick_t0 + k * announce_every (k >= 1): when the queue was added
    double tick_next      # next grid point not yet passed (stale while nobody waits: the tick is off the heap)
    int32_t cb_attempts
    int32_t sched_boost
    bint announce_on_join
    int32_t n_steps
    int32_t step_base # into _step_overflow / _step_boost
    int32_t lut_base  # into _bucket_lut: (virtual * n_steps + step) * 10 + priority
    int32_t waiting   # live callers in line
    int32_t held      # live callers held for their preferred agents (not in line)
    int32_t cb_pending
    int64_t entered
    int64_t answered
    int64_t abandoned
    int64_t exited
    int64_t overflowed
    int64_t withdrawn # live calls ended by withdraw
    int64_t refused   # live callers turned away on joining (full, no_agents, wait_too_long)
    double wait_over  # if_wait_over seconds (wait_rule != W_NONE)
    int32_t max_length    # -1: unlimited
    int32_t join_target   # join_when_no_agents="overflow:<queue>": its slot
    int32_t wait_target   # if_wait_over then "overflow:<queue>": its slot
    int8_t join_rule      # J_ACCEPT, J_REFUSE, J_OVERFLOW
    int8_t wait_rule      # W_NONE, W_OFFER, W_EXIT, W_OVERFLOW
    bint admission        # max_length, join_rule or wait_rule set: _join looks at them
    bint leave_empty      # leave_when_no_agents
    int64_t cb[8]     # offered, accepted, scheduled, dialled, reached, failed, cancelled, gave_up
    int64_t ab[10]    # abandonments per priority
    int64_t obs[10]   # patience observations per priority
    double exposure[10]
    int64_t n_talk
    double talk_sum
    double les        # wait of the last caller taken (last-to-enter-service)
    double* ring_w    # recent waits (patience window), ring buffer
    uint8_t* ring_a   # ... and whether each ended in abandonment
    int32_t ring_head
    int32_t ring_n


# ---------------------------------------------------------------- decisions

cdef class _Decision:
    cdef tuple _values(self)


@cython.no_gc
@cython.final
cdef class Assign(_Decision):
    cdef readonly object call
    cdef readonly object agent
    cdef readonly str queue
    cdef readonly double wait


@cython.no_gc
@cython.final
cdef class Overflow(_Decision):
    cdef readonly object call
    cdef readonly str from_queue
    cdef readonly str to_queue


@cython.no_gc
@cython.final
cdef class Exit(_Decision):
    cdef readonly object call
    cdef readonly str queue
    cdef readonly str reason


@cython.no_gc
@cython.final
cdef class Announce(_Decision):
    cdef readonly object call
    cdef readonly str queue
    cdef readonly long position
    cdef readonly double ewt


@cython.no_gc
@cython.final
cdef class OfferCallback(_Decision):
    cdef readonly object call
    cdef readonly str queue
    cdef readonly double ewt


@cython.no_gc
@cython.final
cdef class DialBack(_Decision):
    cdef readonly object call
    cdef readonly object agent
    cdef readonly str queue
    cdef readonly long attempt


# ---------------------------------------------------------------- the engine
# Declared here so that compiled drivers (the simulator) call its C methods directly.

@cython.final
cdef class Engine:
    cdef readonly str agent_strategy
    cdef readonly object seed
    cdef readonly str rna_action
    cdef readonly double no_answer_delay
    cdef readonly double reject_delay
    cdef readonly str call_choice
    cdef readonly int patience_window
    cdef int _strategy
    cdef int _choice
    cdef bint _rna_ready
    cdef uint64_t _rng
    cdef double _now
    cdef uint64_t _call_seq
    cdef uint64_t _agent_seq
    cdef uint64_t _offers
    cdef list _pending
    cdef bint _due         # inside _run_due: a deadline at t runs before the announcement tick at t
    cdef int32_t _n_leave  # queues with leave_when_no_agents
    cdef list _dropped     # groups whose staffed count fell to 0 since the last leave check (if _n_leave)

    # names and interning
    cdef dict _skills
    cdef dict _queue_ids
    cdef list _queue_names
    cdef list _queue_policies
    cdef dict _req_ids
    cdef list _req_tuples
    cdef dict _group_ids
    cdef list _group_profiles
    cdef dict _extra_buckets
    cdef list _bucket_free         # slots of retired buckets (live reconfiguration), reused first

    # calls
    cdef CallRec* _calls
    cdef int32_t* _call_pos        # position in its bucket heap
    cdef int32_t* _call_timer_pos  # position in the call-timer heap
    cdef int32_t _calls_cap
    cdef int32_t* _call_free
    cdef int32_t _call_nfree
    cdef int32_t _calls_used
    # id -> slot: open addressing over slots (linear probing, load <= 1/2);
    # keys and hashes live in the call records, so a lookup touches no Python int
    cdef int32_t* _ctab
    cdef int64_t _ctab_mask
    cdef int _ctab_shift      # 64 - log2(table size), for Fibonacci hashing
    cdef int32_t _ncalls
    cdef int32_t _waiting
    cdef int32_t _held             # calls held for their preferred agents
    cdef int32_t* _pref_pos        # scratch positions for the _pref heaps (write-only: entries are lazily dropped)

    # agents
    cdef AgentRec* _agents
    cdef int32_t* _agent_idle_pos
    cdef int32_t* _agent_timer_pos
    cdef int32_t _agents_cap
    cdef int32_t* _agent_free
    cdef int32_t _agent_nfree
    cdef int32_t _agents_used
    cdef dict _agent_slots
    cdef list _agent_ids
    cdef list _agent_reasons
    cdef dict _after_call_reasons  # slot -> reason of a deferred pause
    cdef Heap* _pref               # per agent slot: calls held for it, by (entry, seq); stale entries skipped

    # queues and routing steps
    cdef QueueRec* _queues
    cdef int32_t* _tick_pos
    cdef int32_t _nqueues
    cdef int32_t _queues_cap
    cdef int32_t* _step_overflow
    cdef int32_t* _step_boost
    cdef int32_t _steps_used
    cdef int32_t _steps_cap
    cdef int32_t* _bucket_lut
    cdef int32_t _lut_used
    cdef int32_t _lut_cap

    # buckets
    cdef Bucket* _buckets
    cdef int32_t* _bucket_dl_pos
    cdef int32_t _nbuckets
    cdef int32_t _buckets_cap
    cdef int32_t _words_b
    cdef uint64_t* _nonempty
    cdef int32_t* _req_skills
    cdef int32_t _req_skills_used
    cdef int32_t _req_skills_cap

    # groups
    cdef Heap* _groups
    cdef int32_t* _group_staffed   # agents logged in and not paused, per group
    cdef int32_t _ngroups
    cdef int32_t _groups_cap
    cdef int32_t _words_g
    cdef uint64_t* _idle_groups
    cdef uint8_t* _levels
    cdef int32_t _level_stride

    # eligibility, both directions
    cdef uint64_t* _b2g
    cdef uint64_t* _g2b

    # time events
    cdef Heap _timers        # agents: wrap-up ends, delays
    cdef Heap _deadlines     # buckets, keyed by their head's next event
    cdef Heap _call_timers   # call-backs: retries, scheduled slots
    cdef Heap _ticks         # queues: periodic announcements

    # C methods (bodies in _core.pyx)
    cdef void _ensure_level_stride(self, int32_t n_skills) except *
    cdef int32_t _req_id(self, tuple req) except -1
    cdef bint _eligible(self, int32_t b, int32_t g) except -1
    cdef int32_t _new_bucket(self, int32_t q, int32_t step, int32_t prio, int32_t extra, int8_t virtual) except -1
    cdef void _grow_buckets(self) except *
    cdef void _grow_groups(self) except *
    cdef int32_t _group_for(self, tuple skills, object queues) except -1
    cdef int32_t _bucket_for(self, int32_t q, int32_t step, int32_t prio, int32_t extra,
                             int8_t virtual) except -1
    cdef int32_t _new_call_slot(self, object ident, int64_t h) except -1
    cdef inline object _call_id(self, int32_t c)
    cdef inline int64_t _home(self, int64_t h) noexcept
    cdef int32_t _call_find(self, object key) except -2
    cdef int _ctab_insert(self, int32_t c) except -1
    cdef void _ctab_delete(self, int32_t c) noexcept
    cdef void _free_call(self, int32_t c) except *
    cdef int32_t _new_agent_slot(self, object ident) except -1
    cdef int _bucket_touch(self, int32_t b) except -1
    cdef int _bucket_insert(self, int32_t c) except -1
    cdef int _bucket_take(self, int32_t c) except -1
    cdef int _set_state(self, int32_t a, int8_t state, double now) except -1
    cdef inline double _idle_key(self, AgentRec* ar, double now) noexcept
    cdef inline int _eff_priority(self, int32_t q, double entry, int32_t prio, double now) noexcept
    cdef int _assign(self, int32_t c, int32_t a, double now) except -1
    cdef int _dispatch_call(self, int32_t c, double now) except -1
    cdef inline double _theta(self, QueueRec* qr, int32_t prio) noexcept
    cdef inline double _mu(self, QueueRec* qr) noexcept
    cdef int _make_available(self, int32_t a, double now) except -1
    cdef int32_t _best_call(self, int32_t a, double now) noexcept
    cdef int _retire_buckets(self, int32_t q) except -1
    cdef int _set_queue_policy(self, int32_t q, object queue) except -1
    cdef int _set_timer(self, int32_t a, double t) except -1
    cdef int _set_call_timer(self, int32_t c, double t) except -1
    cdef int _observe(self, int32_t c, double now, bint abandoned) except -1
    cdef int32_t _staffed_eligible(self, int32_t b) noexcept
    cdef int64_t _ahead_of_new(self, int32_t q, int32_t prio, double now, int32_t exclude) noexcept
    cdef double _hol(self, int32_t q, double now) noexcept
    cdef object _estimate(self, int32_t q, int64_t k, int32_t b, double now)
    cdef int _on_join(self, int32_t c, double now) except -1
    cdef int _join(self, int32_t c, double t, tuple preferred, double hold) except -1
    cdef int _refuse(self, int32_t c, str reason) except -1
    cdef int _overflow_at_join(self, int32_t c, int32_t target, double t) except -1
    cdef int _leave_check(self, double t) except -1
    cdef int _tick(self, int32_t q, double t) except -1
    cdef int _arm_tick(self, int32_t q, double t) except -1
    cdef bint _apply_deadline(self, int32_t c, double t) except -1
    cdef int _run_due(self, double now) except -1
    cdef int _run_events(self, Heap** heaps, double now) except -1
    cdef inline double _begin(self, object now) except? -1.0
    cdef inline int _advance_to(self, double t) except -1
    cdef inline double _next_deadline(self) noexcept
    cdef inline list _finish(self)
    cdef inline int32_t _queue_slot(self, object queue) except -1
    cdef inline int32_t _agent_slot(self, object agent) except -1
    cdef int _ready(self, object agent, double t) except -1
    cdef int _logout(self, int32_t a, double t) except -1
    cdef int _defer(self, int32_t a, int8_t what, str reason) except -1
    cdef int _clear_after_call(self, int32_t a) except -1
    cdef int _carry_out_after_call(self, int32_t a, double t) except -1
    cdef inline int32_t _call_slot(self, object call) except -1
    cdef int32_t _new_call(self, object call, int32_t q, object priority, object requirements,
                           double t) except -1
    cdef int _enqueue(self, object call, object queue, object priority, object requirements, double t) except -1
    cdef int _enqueue_in(self, object call, int32_t q, object priority, object requirements, double t) except -1
    cdef int _enqueue_preferred(self, object call, int32_t q, object priority, object requirements,
                                tuple preferred, double hold, double t) except -1
    cdef int _place(self, int32_t c, tuple preferred, double hold, double t) except -1
    cdef inline bint _pref_live(self, Entry* e) noexcept
    cdef int _pref_push(self, int32_t a, int32_t c) except -1
    cdef int _unhold(self, int32_t c) except -1
    cdef int32_t _take_preferred(self, int32_t a) except -2
    cdef int _release_holds(self, int32_t a, double t) except -1
    cdef int _schedule_callback(self, object call, object queue, object at, object priority,
                                object requirements, double t) except -1
    cdef int _enter_scheduled(self, int32_t c, double t) except -1
    cdef int _accept_callback(self, object call, double t) except -1
    cdef int _answer(self, object call, double t) except -1
    cdef int _connect(self, int32_t c, double t) except -1
    cdef int _callback_answered(self, object call, double t) except -1
    cdef int _callback_failed(self, object call, double t) except -1
    cdef int _requeue(self, int32_t c, double t) except -1
    cdef int _after_delay(self, int32_t a, double delay, double t) except -1
    cdef int32_t _release_offer(self, object call, str action) except -1
    cdef int _abandon(self, object call, double t) except -1
    cdef int _withdraw(self, object call, double t) except -1
    cdef int _complete(self, object call, double t) except -1
