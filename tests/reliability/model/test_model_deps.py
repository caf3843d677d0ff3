"""Model-based test of dependencies and flows: the machine of ``test_model.py`` on its two
queues with only the rules that meet dependencies (publishing, leases and acks, retries,
cancels, removals, expiry and retention, maintenance, vanished records, and every
dependency rule: dependent jobs, chains, flows, outbox deliveries in any order, the repair
scan), so its runs go deeper into them: flows that run to their end, chains that fail
down, outcomes delivered late, twice, or to jobs that are gone. Schedules, rate limits,
pauses, progress, heartbeats and parent/child counters are left to the main machine.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, run_state_machine_as_test
from test_model import (
    KEEP_MS,
    QUEUES,
    SETTINGS,
    STEPS,
    WEEK_MS,
    QueueMachine,
    job_specs,
)

from omniq._limits import DEFAULT_EVENTS_MAXLEN

# the main machine's rules this one leaves out (replaced by plain methods: not rules)
OFF = ("heartbeat", "heartbeat_many", "progress", "strict_retry", "pause", "set_rate_limit",
       "reserve_under_limits", "clear_rate_limit", "get_rate_limit", "childs_init",
       "child_ack", "schedule", "pause_schedule", "resume_schedule", "unschedule",
       "fire_schedules", "reach_fire", "fire_raced", "read_schedules")


class DepsMachine(QueueMachine):
    @initialize(
        keep_completed=st.sampled_from([0, 1, 3, 100, 100]),
        keep_failed=st.sampled_from([None, None, 0, 2]),
        seed=st.lists(job_specs, max_size=4, unique_by=lambda s: s["id"]),
        keep_completed_ms=KEEP_MS,
        keep_failed_ms=KEEP_MS,
        events_maxlen=st.sampled_from([DEFAULT_EVENTS_MAXLEN] * 3 + [0]),
    )
    def setup(self, keep_completed: int, keep_failed: int | None,  # type: ignore[override]
              seed: list[dict[str, Any]], keep_completed_ms: int = 0, keep_failed_ms: int = 0,
              events_maxlen: int = DEFAULT_EVENTS_MAXLEN) -> None:
        super().setup(keep_completed, keep_failed, WEEK_MS, True, [], keep_completed_ms,
                      keep_failed_ms, events_maxlen)
        assert self.queues == QUEUES
        if seed:
            self._publish_many(QUEUES[0], seed)


def _not_a_rule(self: QueueMachine, *args: Any, **kwargs: Any) -> None:
    raise AssertionError("a rule this machine leaves out was called")


for _name in OFF:
    assert hasattr(QueueMachine, _name), _name
    setattr(DepsMachine, _name, _not_a_rule)


# longer runs than the main machine's: a flow takes a few steps to publish, run and
# deliver (OMNIQ_MODEL_STEPS scales them too)
DEPS_SETTINGS = settings(SETTINGS, stateful_step_count=STEPS * 5 // 3)


def test_dependencies_agree_with_model(omniq_redis_url: str) -> None:
    run_state_machine_as_test(lambda: DepsMachine(omniq_redis_url), settings=DEPS_SETTINGS)
