"""Bad ARGV for every script, called directly (bypassing the client): (case id, script,
KEYS[1], ARGV, expected reply). Each must be an ERR reply, never a Lua runtime error, and
must write nothing (tests/reliability/inputs/test_bad_input.py).

An argument ``@<job id>`` stands for the lease token the populated database holds for that
job (see inputs_util.populate), so a case can be a call that would otherwise succeed."""

from __future__ import annotations

T = "1000100"  # now_ms
LATER = "2000000"  # after d1 is due and the leases of a1 and a2 expired
Q, C = "{q}:meta", "{cc:parent}:meta"
_FIELDS = ("id", "payload", "ma", "tm", "bo", "due", "delay", "gid", "gl", "kc", "kf", "x")
_GOOD = {
    "id": "j",
    "payload": "{}",
    "ma": "3",
    "tm": "100",
    "bo": "0",
    "due": "0",
    "delay": "0",
    "gid": "",
    "gl": "0",
    "kc": "0",  # keep_completed_ms
    "kf": "0",  # keep_failed_ms
    "x": "",  # extras: the job-control options as a JSON object
}


def j11(**kw: str) -> list[str]:
    """The ENQUEUE_FIELDS (12) enqueue fields of one good job, with some replaced."""
    v = {**_GOOD, **kw}
    return [v[n] for n in _FIELDS]


def jx(extras: str) -> list[str]:
    """The enqueue arguments of one good job whose extras field is `extras`."""
    return [T, "1", *j11(x=extras)]


CASES: list[tuple[str, str, str, list[str], list[str]]] = [
    ("enqueue-extras-not-json", "enqueue", Q, [T, "1", *j11(x='{oops')],
     ["ERR", "BAD_ARGS", "extras"]),
    ("enqueue-extras-array", "enqueue", Q, [T, "1", *j11(x='[1]')],
     ["ERR", "BAD_ARGS", "extras"]),
    ("enqueue-extras-string", "enqueue", Q, jx('"x"'),
     ["ERR", "BAD_ARGS", "extras"]),
    ("enqueue-extras-unknown-key", "enqueue", Q, jx('{"priority":1}'),
     ["ERR", "BAD_ARGS", "extras"]),
    ("enqueue-extras-dedup-key-empty", "enqueue", Q, jx('{"dedup_key":""}'),
     ["ERR", "BAD_ARGS", "dedup_key"]),
    ("enqueue-extras-dedup-key-number", "enqueue", Q, jx('{"dedup_key":5}'),
     ["ERR", "BAD_ARGS", "dedup_key"]),
    ("enqueue-extras-dedup-key-control", "enqueue", Q, jx('{"dedup_key":"a\\nb"}'),
     ["ERR", "BAD_ARGS", "dedup_key"]),
    ("enqueue-extras-dedup-key-257", "enqueue", Q, jx('{"dedup_key":"' + 'k' * 257 + '"}'),
     ["ERR", "BAD_ARGS", "dedup_key"]),
    ("enqueue-extras-dedup-ttl-no-key", "enqueue", Q, jx('{"dedup_ttl_ms":5}'),
     ["ERR", "BAD_ARGS", "dedup_key"]),
    ("enqueue-extras-dedup-mode-no-key", "enqueue", Q, jx('{"dedup":"replace"}'),
     ["ERR", "BAD_ARGS", "dedup_key"]),
    ("enqueue-extras-dedup-mode-unknown", "enqueue", Q, jx('{"dedup_key":"k","dedup":"merge"}'),
     ["ERR", "BAD_ARGS", "dedup"]),
    ("enqueue-extras-dedup-ttl-negative", "enqueue", Q, jx('{"dedup_key":"k","dedup_ttl_ms":-1}'),
     ["ERR", "BAD_ARGS", "dedup_ttl_ms"]),
    ("enqueue-extras-expires-fraction", "enqueue", Q, jx('{"expires_ms":1.5}'),
     ["ERR", "BAD_ARGS", "expires_ms"]),
    ("enqueue-extras-expires-text", "enqueue", Q, jx('{"expires_ms":"5"}'),
     ["ERR", "BAD_ARGS", "expires_ms"]),
    ("enqueue-extras-expires-beyond-2^53", "enqueue", Q, jx('{"expires_ms":9007199254740992}'),
     ["ERR", "BAD_ARGS", "expires_ms"]),
    ("enqueue-extras-expires-and-expire-in", "enqueue", Q, jx('{"expires_ms":5,"expire_in_ms":5}'),
     ["ERR", "BAD_ARGS", "expires_ms"]),
    ("enqueue-extras-expire-in-nan", "enqueue", Q, jx('{"expire_in_ms":nan}'),
     ["ERR", "BAD_ARGS", "expire_in_ms"]),
    ("enqueue-extras-run-timeout-negative", "enqueue", Q, jx('{"run_timeout_ms":-5}'),
     ["ERR", "BAD_ARGS", "run_timeout_ms"]),
    ("enqueue-extras-run-timeout-bool", "enqueue", Q, jx('{"run_timeout_ms":true}'),
     ["ERR", "BAD_ARGS", "run_timeout_ms"]),
    ("enqueue-extras-backoff-unknown", "enqueue", Q, jx('{"backoff":"linear"}'),
     ["ERR", "BAD_ARGS", "backoff"]),
    ("enqueue-extras-backoff-max-exponent", "enqueue", Q, jx('{"backoff_max_ms":1e400}'),
     ["ERR", "BAD_ARGS", "backoff_max_ms"]),
    ("enqueue-extras-backoff-jitter-number", "enqueue", Q, jx('{"backoff_jitter":1}'),
     ["ERR", "BAD_ARGS", "backoff_jitter"]),
    ("enqueue-extras-group-order-no-gid", "enqueue", Q, jx('{"group_order":"strict"}'),
     ["ERR", "BAD_ARGS", "group_order"]),
    ("enqueue-extras-group-order-unknown", "enqueue", Q, jx('{"group_order":"lifo"}'),
     ["ERR", "BAD_ARGS", "group_order"]),
    ("enqueue-extras-on-failure-not-strict", "enqueue", Q, jx('{"on_failure":"block"}'),
     ["ERR", "BAD_ARGS", "on_failure"]),
    ("enqueue-extras-on-failure-unknown", "enqueue", Q, jx('{"on_failure":"retry"}'),
     ["ERR", "BAD_ARGS", "on_failure"]),
    ("enqueue-no-args", "enqueue", Q, [], ["ERR", "BAD_ARGS", "count"]),
    ("enqueue-count-text", "enqueue", Q, [T, "abc"], ["ERR", "BAD_ARGS", "count"]),
    ("enqueue-count-missing-fields", "enqueue", Q, [T, "1"], ["ERR", "BAD_ARGS", "argument count"]),
    ("enqueue-count-negative", "enqueue", Q, [T, "-1"], ["ERR", "BAD_ARGS", "count"]),
    ("enqueue-now-text", "enqueue", Q, ["soon", "1", *j11()], ["ERR", "BAD_ARGS", "now_ms"]),
    (
        "enqueue-attempts-exponent",
        "enqueue",
        Q,
        [T, "1", *j11(ma="1e3")],
        ["ERR", "BAD_ARGS", "max_attempts"],
    ),
    (
        "enqueue-timeout-blank-padded",
        "enqueue",
        Q,
        [T, "1", *j11(tm=" 5")],
        ["ERR", "BAD_ARGS", "timeout_ms"],
    ),
    (
        "enqueue-backoff-hex",
        "enqueue",
        Q,
        [T, "1", *j11(bo="0x10")],
        ["ERR", "BAD_ARGS", "backoff_ms"],
    ),
    (
        "enqueue-due-beyond-2^53",
        "enqueue",
        Q,
        [T, "1", *j11(due="100000000000000000000")],
        ["ERR", "BAD_ARGS", "due_ms"],
    ),
    (
        "enqueue-delay-fraction",
        "enqueue",
        Q,
        [T, "1", *j11(delay="1.5")],
        ["ERR", "BAD_ARGS", "delay_ms"],
    ),
    (
        "enqueue-limit-inf",
        "enqueue",
        Q,
        [T, "1", *j11(gid="g", gl="inf")],
        ["ERR", "BAD_ARGS", "group_limit"],
    ),
    (
        "enqueue-payload-scalar",
        "enqueue",
        Q,
        [T, "1", *j11(payload="42")],
        ["ERR", "BAD_PAYLOAD", "j"],
    ),
    (
        "enqueue-second-job-bad",
        "enqueue",
        Q,
        [T, "2", *j11(id="x1"), *j11(id="x2", tm="0")],
        ["ERR", "BAD_ARGS", "timeout_ms"],
    ),
    (  # the first job would take a dedup key and replace a holder: neither happens
        "enqueue-dedup-then-bad-job",
        "enqueue",
        Q,
        [T, "3", *j11(id="x1", x='{"dedup_key":"k1"}'),
         *j11(id="x2", x='{"dedup_key":"k1","dedup":"replace"}'),
         *j11(id="x3", x='{"backoff":"linear"}')],
        ["ERR", "BAD_ARGS", "backoff"],
    ),
    (  # a duplicate id after a deduplicated job
        "enqueue-dedup-then-duplicate",
        "enqueue",
        Q,
        [T, "2", *j11(id="x1", x='{"dedup_key":"k1"}'), *j11(id="x1")],
        ["ERR", "DUPLICATE", "x1"],
    ),
    ("reserve-count-text", "reserve", Q, [T, "many"], ["ERR", "BAD_ARGS", "count"]),
    ("reserve-count-zero", "reserve", Q, [T, "0"], ["ERR", "BAD_ARGS", "count"]),
    ("reserve-count-1001", "reserve", Q, [T, "1001"], ["ERR", "BAD_ARGS", "count"]),
    ("reserve-now-negative", "reserve", Q, ["-5", "1"], ["ERR", "BAD_ARGS", "now_ms"]),
    ("heartbeat-no-args", "heartbeat", Q, [], ["ERR", "BAD_ARGS", "count"]),
    (
        "heartbeat-count-fraction",
        "heartbeat",
        Q,
        [T, "1.5", "a1", "t"],
        ["ERR", "BAD_ARGS", "count"],
    ),
    (
        "heartbeat-pairs-missing",
        "heartbeat",
        Q,
        [T, "2", "a1", "t"],
        ["ERR", "BAD_ARGS", "argument count"],
    ),
    ("ack_success-no-args", "ack_success", Q, [], ["ERR", "BAD_JOB_ID"]),
    ("ack_success-now-text", "ack_success", Q, ["a1", "later", "t"], ["ERR", "BAD_ARGS", "now_ms"]),
    (
        "ack_success-keep-negative",
        "ack_success",
        Q,
        ["a1", T, "t", "", "-1"],
        ["ERR", "BAD_ARGS", "keep_completed"],
    ),
    ("ack_fail-no-args", "ack_fail", Q, [], ["ERR", "BAD_JOB_ID"]),
    (
        "ack_fail-keep-failed-text",
        "ack_fail",
        Q,
        ["a1", T, "t", "err", "0", "all"],
        ["ERR", "BAD_ARGS", "keep_failed"],
    ),
    ("ack_reserve-no-args", "ack_reserve", Q, [], ["ERR", "BAD_ARGS", "keep_completed"]),
    (
        "ack_reserve-count-text",
        "ack_reserve",
        Q,
        [T, "100", "x", "0"],
        ["ERR", "BAD_ARGS", "count"],
    ),
    (
        "ack_reserve-fields-missing",
        "ack_reserve",
        Q,
        [T, "100", "1", "a1", "t"],
        ["ERR", "BAD_ARGS", "argument count"],
    ),
    (
        "ack_reserve-bad-outcome",
        "ack_reserve",
        Q,
        [T, "100", "1", "a1", "t", "Q", "", "0"],
        ["ERR", "BAD_ARGS", "outcome"],
    ),
    (
        "ack_reserve-empty-id",
        "ack_reserve",
        Q,
        [T, "100", "1", "", "t", "S", "", "0"],
        ["ERR", "BAD_JOB_ID", "0"],
    ),
    (
        "ack_reserve-reserve-count-1001",
        "ack_reserve",
        Q,
        [T, "100", "0", "1001"],
        ["ERR", "BAD_ARGS", "reserve_count"],
    ),
    (
        "ack_reserve-keep-failed-negative",
        "ack_reserve",
        Q,
        [T, "100", "0", "0", "-2"],
        ["ERR", "BAD_ARGS", "keep_failed"],
    ),
    ("promote-max-zero", "promote_delayed", Q, [T, "0"], ["ERR", "BAD_ARGS", "max_promote"]),
    ("promote-max-text", "promote_delayed", Q, [T, "lots"], ["ERR", "BAD_ARGS", "max_promote"]),
    ("reap-max-negative", "reap_expired", Q, [T, "-1"], ["ERR", "BAD_ARGS", "max_reap"]),
    (
        "reap-keep-failed-fraction",
        "reap_expired",
        Q,
        [T, "10", "0.5"],
        ["ERR", "BAD_ARGS", "keep_failed"],
    ),
    ("retry_failed-no-args", "retry_failed", Q, [], ["ERR", "BAD_JOB_ID"]),
    ("retry_failed-now-text", "retry_failed", Q, ["f1", "x"], ["ERR", "BAD_ARGS", "now_ms"]),
    ("retry_failed_batch-no-args", "retry_failed_batch", Q, [], ["ERR", "BAD_ARGS", "count"]),
    (
        "retry_failed_batch-ids-missing",
        "retry_failed_batch",
        Q,
        [T, "2", "f1"],
        ["ERR", "BAD_ARGS", "argument count"],
    ),
    (
        "retry_failed_batch-101",
        "retry_failed_batch",
        Q,
        [T, "101", *[f"x{i}" for i in range(101)]],
        ["ERR", "BATCH_TOO_LARGE", "100"],
    ),
    ("remove_job-no-args", "remove_job", Q, [], ["ERR", "BAD_JOB_ID"]),
    ("remove_job-bad-lane", "remove_job", Q, ["w1", "active", T], ["ERR", "LANE_MISMATCH"]),
    ("remove_job-now-text", "remove_job", Q, ["w1", "wait", "x"], ["ERR", "BAD_ARGS", "now_ms"]),
    ("remove_jobs_batch-no-args", "remove_jobs_batch", Q, [], ["ERR", "BAD_ARGS", "count"]),
    (
        "remove_jobs_batch-bad-lane",
        "remove_jobs_batch",
        Q,
        ["nope", "1", "w1", T],
        ["ERR", "BAD_LANE", "nope"],
    ),
    (
        "remove_jobs_batch-now-missing",
        "remove_jobs_batch",
        Q,
        ["wait", "1", "w1"],
        ["ERR", "BAD_ARGS", "argument count"],
    ),
    (
        "remove_jobs_batch-101",
        "remove_jobs_batch",
        Q,
        ["wait", "101", *[f"x{i}" for i in range(101)], T],
        ["ERR", "BATCH_TOO_LARGE", "100"],
    ),
    ("childs_init-no-args", "childs_init", "{cc:new}:meta", [], ["ERR", "NO_EXPECTED"]),
    (
        "childs_init-expected-text",
        "childs_init",
        "{cc:new}:meta",
        ["three"],
        ["ERR", "BAD_EXPECTED"],
    ),
    (
        "childs_init-expected-beyond-2^53",
        "childs_init",
        "{cc:new}:meta",
        ["100000000000000000000"],
        ["ERR", "BAD_EXPECTED"],
    ),
    (
        "childs_init-ttl-negative",
        "childs_init",
        "{cc:new}:meta",
        ["2", "-1"],
        ["ERR", "BAD_ARGS", "ttl_ms"],
    ),
    ("child_ack-no-args", "child_ack", C, [], ["ERR", "CHILD_REQUIRED"]),
    (
        "child_ack-finished-ttl-zero",
        "child_ack",
        C,
        ["child-2", "0"],
        ["ERR", "BAD_ARGS", "finished_ttl_ms"],
    ),
]


# -- progress.lua: job_id, lease_token, value, now_ms, [events_maxlen] ----------------------

BIG = "[" + "1," * 32767 + "1]"  # 65,537 bytes of JSON, one more than MAX_PROGRESS_BYTES

CASES += [
    ("progress-no-args", "progress", Q, [], ["ERR", "BAD_JOB_ID"]),
    ("progress-id-empty", "progress", Q, ["", "@a1", "1", T], ["ERR", "BAD_JOB_ID"]),
    ("progress-value-missing", "progress", Q, ["a1", "@a1"], ["ERR", "BAD_ARGS", "progress"]),
    ("progress-value-empty", "progress", Q, ["a1", "@a1", "", T],
     ["ERR", "BAD_ARGS", "progress"]),
    ("progress-value-oversized", "progress", Q, ["a1", "@a1", BIG, T],
     ["ERR", "BAD_ARGS", "progress"]),
    ("progress-token-empty", "progress", Q, ["a1", "", "1", T], ["ERR", "TOKEN_REQUIRED"]),
    ("progress-token-bogus", "progress", Q, ["a1", "f" * 40, "1", T],
     ["ERR", "TOKEN_MISMATCH"]),
    ("progress-token-foreign", "progress", Q, ["a1", "@a2", "1", T],
     ["ERR", "TOKEN_MISMATCH"]),
    ("progress-lease-ended", "progress", Q, ["c1", "@c1", "1", T], ["ERR", "TOKEN_MISMATCH"]),
    ("progress-unknown-job", "progress", Q, ["ghost", "@a1", "1", T],
     ["ERR", "TOKEN_MISMATCH"]),
    ("progress-now-text", "progress", Q, ["a1", "@a1", "1", "soon"],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("progress-now-negative", "progress", Q, ["a1", "@a1", "1", "-5"],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("progress-now-fraction", "progress", Q, ["a1", "@a1", "1", "1.5"],
     ["ERR", "BAD_ARGS", "now_ms"]),
]

# -- cancel.lua: job_id, now_ms, [keep_failed], [events_maxlen] -----------------------------

CASES += [
    ("cancel-no-args", "cancel", Q, [], ["ERR", "BAD_JOB_ID"]),
    ("cancel-id-missing", "cancel", Q, ["", T], ["ERR", "BAD_JOB_ID"]),
    ("cancel-id-257", "cancel", Q, ["w" * 257, T], ["ERR", "BAD_JOB_ID"]),
    ("cancel-id-control", "cancel", Q, ["w\n1", T], ["ERR", "BAD_JOB_ID"]),
    ("cancel-now-text", "cancel", Q, ["w1", "soon"], ["ERR", "BAD_ARGS", "now_ms"]),
    ("cancel-now-negative", "cancel", Q, ["w1", "-5"], ["ERR", "BAD_ARGS", "now_ms"]),
    ("cancel-now-fraction", "cancel", Q, ["w1", "1.5"], ["ERR", "BAD_ARGS", "now_ms"]),
    ("cancel-keep-failed-negative", "cancel", Q, ["w1", T, "-1"],
     ["ERR", "BAD_ARGS", "keep_failed"]),
    ("cancel-keep-failed-text", "cancel", Q, ["w1", T, "all"],
     ["ERR", "BAD_ARGS", "keep_failed"]),
    ("cancel-keep-failed-fraction", "cancel", Q, ["a1", T, "0.5"],
     ["ERR", "BAD_ARGS", "keep_failed"]),
]

# -- enqueue: keep_completed_ms / keep_failed_ms -------------------------------------------

for _field, _name in (("kc", "keep_completed_ms"), ("kf", "keep_failed_ms")):
    for _label, _bad in (("negative", "-1"), ("fraction", "1.5"), ("text", "1h"),
                         ("empty", ""), ("exponent", "1e3"), ("beyond-2^53", "1" + "0" * 20)):
        CASES.append((f"enqueue-{_name}-{_label}", "enqueue", Q,
                      [T, "1", *j11(id="new", **{_field: _bad})],
                      ["ERR", "BAD_ARGS", _name]))
CASES.append(("enqueue-keep-ms-second-job-bad", "enqueue", Q,
              [T, "2", *j11(id="x1", kc="5"), *j11(id="x2", kf="-1")],
              ["ERR", "BAD_ARGS", "keep_failed_ms"]))

# -- events_maxlen, the last optional argument of every queue script -----------------------
# Each call is otherwise one that writes (publishes, leases, acks, promotes, reaps, removes,
# retries, pauses, stores progress), so "nothing written" is the refusal's doing.

WRITES_BEFORE_EVENTS_MAXLEN: dict[str, list[str]] = {
    "enqueue": [T, "1", *j11(id="new")],
    "reserve": [T, "3"],
    "ack_success": ["a1", T, "@a1", '{"r":1}', "100"],
    "ack_fail": ["a1", T, "@a1", "boom", "0", ""],
    "ack_reserve": [T, "100", "1", "a1", "@a1", "S", "", "3", ""],
    "promote_delayed": [LATER, "10"],
    "reap_expired": [LATER, "10", ""],
    "remove_job": ["w1", "wait", T],
    "remove_jobs_batch": ["wait", "1", "w1", T],
    "retry_failed": ["f1", T],
    "retry_failed_batch": [T, "1", "f1"],
    "pause": [],
    "resume": [],
    "progress": ["a1", "@a1", '{"pct":50}', T],
    "cancel": ["w1", T, ""],
}

for _script, _args in WRITES_BEFORE_EVENTS_MAXLEN.items():
    for _label, _bad in (("text", "many"), ("negative", "-1"), ("fraction", "1.5"),
                         ("blank-padded", " 10"), ("beyond-2^53", "1" + "0" * 20)):
        CASES.append((f"{_script}-events-maxlen-{_label}", _script, Q, [*_args, _bad],
                      ["ERR", "BAD_ARGS", "events_maxlen"]))

# -- rate limits: set_rate_limit, clear_rate_limit, get_rate_limit -------------------------

_BAD_INTS = (("negative", "-1"), ("zero", "0"), ("fraction", "1.5"), ("text", "ten"),
             ("empty", ""), ("blank-padded", " 5"), ("beyond-2^53", "1" + "0" * 20))
for _label, _bad in _BAD_INTS:
    CASES.append((f"set-rate-limit-max-jobs-{_label}", "set_rate_limit", Q, [T, "", _bad, "1000"],
                  ["ERR", "BAD_ARGS", "max_jobs"]))
    CASES.append((f"set-rate-limit-per-ms-{_label}", "set_rate_limit", Q, [T, "grp", "5", _bad],
                  ["ERR", "BAD_ARGS", "per_ms"]))
CASES += [
    ("set-rate-limit-max-jobs-over-the-maximum", "set_rate_limit", Q, [T, "", "100001", "1000"],
     ["ERR", "BAD_ARGS", "max_jobs"]),
    ("set-rate-limit-gid-control", "set_rate_limit", Q, [T, "a\nb", "5", "1000"],
     ["ERR", "BAD_ARGS", "gid"]),
    ("set-rate-limit-gid-257", "set_rate_limit", Q, [T, "g" * 257, "5", "1000"],
     ["ERR", "BAD_ARGS", "gid"]),
    ("set-rate-limit-too-few-args", "set_rate_limit", Q, [T, "", "5"],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("set-rate-limit-too-many-args", "set_rate_limit", Q, [T, "", "5", "1000", "x"],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("clear-rate-limit-gid-control", "clear_rate_limit", Q, [T, "a\tb"],
     ["ERR", "BAD_ARGS", "gid"]),
    ("clear-rate-limit-no-args", "clear_rate_limit", Q, [],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("clear-rate-limit-three-args", "clear_rate_limit", Q, [T, "", ""],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("set-rate-limit-now-negative", "set_rate_limit", Q, ["-1", "", "5", "1000"],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("set-rate-limit-now-fraction", "set_rate_limit", Q, ["1.5", "", "5", "1000"],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("clear-rate-limit-now-text", "clear_rate_limit", Q, ["soon", ""],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("get-rate-limit-now-negative", "get_rate_limit", Q, ["-5", "queue", ""],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("get-rate-limit-now-text", "get_rate_limit", Q, ["soon", "queue", ""],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("get-rate-limit-which-unknown", "get_rate_limit", Q, [T, "groups", ""],
     ["ERR", "BAD_ARGS", "which"]),
    ("get-rate-limit-group-without-gid", "get_rate_limit", Q, [T, "group", ""],
     ["ERR", "BAD_ARGS", "gid"]),
    ("get-rate-limit-queue-with-gid", "get_rate_limit", Q, [T, "queue", "grp"],
     ["ERR", "BAD_ARGS", "gid"]),
    ("get-rate-limit-too-few-args", "get_rate_limit", Q, [T, "all"],
     ["ERR", "BAD_ARGS", "argument count"]),
]

# -- schedules: schedule_set, schedule_read, schedule_fire, schedule_pause, schedule_remove --
# Run on inputs_util.populate_schedules (test_bad_input.py::test_schedule_script_with_bad_argv):
# schedules s1 (every minute, next fire T0 + 60 s), sa (every second from T0 - 10 s to
# T0 + 5 s, misfire 'all'), so / ss (every second from T0 - 10 s, 'once' / 'skip'), sp
# (paused), all at rev 1; "{pq}:meta" is the anchor of a partitioned queue.

T0 = 1_000_000
PQ = "{pq}:meta"
SCHED_FIELDS = ("cron", "every_ms", "tz", "start_ms", "end_ms", "misfire", "misfire_grace_ms",
                "jitter_ms", "payload", "max_attempts", "timeout_ms", "backoff_ms", "gid",
                "group_limit", "keep_completed_ms", "keep_failed_ms", "extras")
_SDEF = {"cron": "", "every_ms": "60000", "tz": "UTC", "start_ms": "", "end_ms": "",
         "misfire": "once", "misfire_grace_ms": "60000", "jitter_ms": "0", "payload": "{}",
         "max_attempts": "3", "timeout_ms": "30000", "backoff_ms": "5000", "gid": "",
         "group_limit": "0", "keep_completed_ms": "0", "keep_failed_ms": "0", "extras": ""}


def sset(name: str = "new", rev: str = "0", next_ms: str = str(T0 + 60_100),
         anchor: str = T, now: str = T, **fields: str) -> list[str]:
    """schedule_set ARGV of a good new interval schedule, with some fields replaced."""
    v = {**_SDEF, **fields}
    return [now, name, rev, *[v[f] for f in SCHED_FIELDS], next_ms, anchor]


def ms(*times: int) -> list[str]:
    return [str(t) for t in times]


SA_DUE = list(range(T0 - 10_000, T0 + 1, 1000))  # the 11 occurrences of sa due at T


def plan(name: str = "sa", rev: str = "1", expected: str = str(T0 - 10_000),
         new_next: str = str(T0 + 1000), skip: tuple[str, str] = ("", ""),
         times: list[str] | None = None, m: str | None = None) -> list[str]:
    """One schedule's part of a schedule_fire call (default: sa's good plan at T)."""
    t = ms(*SA_DUE) if times is None else times
    return [name, rev, expected, new_next, *skip, str(len(t)) if m is None else m, *t]


def fire(*plans: list[str], now: str = T, events: str = "100", n: str | None = None) -> list[str]:
    """schedule_fire ARGV."""
    return [now, events, str(len(plans)) if n is None else n, *[a for p in plans for a in p]]


SO_ONE = plan("so", times=ms(T0), skip=(str(T0 - 10_000), str(T0 - 1000)))  # a good plan

SCHEDULE_CASES: list[tuple[str, str, str, list[str], list[str]]] = []
_BAD_SET_FIELDS: list[tuple[str, dict[str, str], str]] = [
    ("cron-and-every", {"cron": "* * * * *"}, "cron or every_ms"),
    ("neither-cron-nor-every", {"every_ms": ""}, "cron or every_ms"),
    ("cron-control-char", {"cron": "*\t* * * *", "every_ms": ""}, "cron"),
    ("cron-newline", {"cron": "* * * * *\n", "every_ms": ""}, "cron"),
    ("cron-257", {"cron": "*" * 257, "every_ms": ""}, "cron"),
    ("every-999", {"every_ms": "999"}, "every_ms"),
    ("every-zero", {"every_ms": "0"}, "every_ms"),
    ("every-negative", {"every_ms": "-60000"}, "every_ms"),
    ("every-exponent", {"every_ms": "6e4"}, "every_ms"),
    ("every-fraction", {"every_ms": "1000.5"}, "every_ms"),
    ("every-beyond-2^53", {"every_ms": "1" + "0" * 20}, "every_ms"),
    ("tz-empty", {"tz": ""}, "tz"),
    ("tz-space", {"cron": "0 * * * *", "every_ms": "", "tz": "Europe/ Paris"}, "tz"),
    ("tz-padded", {"cron": "0 * * * *", "every_ms": "", "tz": " UTC"}, "tz"),
    ("tz-control-char", {"cron": "0 * * * *", "every_ms": "", "tz": "UTC\n"}, "tz"),
    ("tz-65", {"cron": "0 * * * *", "every_ms": "", "tz": "Z" * 65}, "tz"),
    ("tz-with-every", {"tz": "Europe/Paris"}, "tz"),
    ("start-negative", {"start_ms": "-1"}, "start_ms"),
    ("start-text", {"start_ms": "now"}, "start_ms"),
    ("end-negative", {"end_ms": "-1"}, "end_ms"),
    ("end-fraction", {"end_ms": "2000000.5"}, "end_ms"),
    ("end-before-start", {"start_ms": "2000", "end_ms": "1999"}, "end_ms"),
    ("misfire-unknown", {"misfire": "twice"}, "misfire"),
    ("misfire-empty", {"misfire": ""}, "misfire"),
    ("misfire-upper-case", {"misfire": "ONCE"}, "misfire"),
    ("grace-negative", {"misfire_grace_ms": "-1"}, "misfire_grace_ms"),
    ("grace-empty", {"misfire_grace_ms": ""}, "misfire_grace_ms"),
    ("jitter-negative", {"jitter_ms": "-1"}, "jitter_ms"),
    ("jitter-text", {"jitter_ms": "some"}, "jitter_ms"),
    ("payload-scalar", {"payload": "42"}, "payload"),
    ("payload-string", {"payload": '"text"'}, "payload"),
    ("payload-empty", {"payload": ""}, "payload"),
    ("max-attempts-zero", {"max_attempts": "0"}, "max_attempts"),
    ("timeout-zero", {"timeout_ms": "0"}, "timeout_ms"),
    ("backoff-negative", {"backoff_ms": "-1"}, "backoff_ms"),
    ("gid-control-char", {"gid": "a\nb"}, "gid"),
    ("gid-257", {"gid": "g" * 257}, "gid"),
    ("group-limit-negative", {"gid": "g", "group_limit": "-1"}, "group_limit"),
    ("keep-completed-negative", {"keep_completed_ms": "-1"}, "keep_completed_ms"),
    ("keep-failed-text", {"keep_failed_ms": "1h"}, "keep_failed_ms"),
    ("extras-not-json", {"extras": "{oops"}, "extras"),
    ("extras-unknown-key", {"extras": '{"priority":1}'}, "extras"),
    ("extras-absolute-expires", {"extras": '{"expires_ms":2000000}'}, "expires_ms"),
    ("extras-expires-and-expire-in", {"extras": '{"expires_ms":5,"expire_in_ms":5}'},
     "expires_ms"),
    ("extras-strict-without-gid", {"extras": '{"group_order":"strict"}'}, "group_order"),
    ("extras-dedup-ttl-without-key", {"extras": '{"dedup_ttl_ms":5}'}, "dedup_key"),
    # an occurrence is a new job with no place in a flow
    ("extras-depends-on", {"extras": '{"depends_on":[["q","w1"]]}'}, "depends_on"),
    ("extras-depends-on-and-policy", {"extras": '{"depends_on":[["q","w1"]],"dep_policy":"wait"}'},
     "depends_on"),
    ("extras-dependents", {"extras": '{"dependents":[["q2","p","fail"]]}'}, "dependents"),
    ("extras-dep-policy-alone", {"extras": '{"dep_policy":"ignore"}'}, "dep_policy"),
]
for _label, _fields, _detail in _BAD_SET_FIELDS:
    SCHEDULE_CASES.append((f"schedule_set-{_label}", "schedule_set", Q, sset(**_fields),
                           ["ERR", "BAD_ARGS", _detail]))
SCHEDULE_CASES += [
    ("schedule_set-no-args", "schedule_set", Q, [], ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_set-one-arg-short", "schedule_set", Q, sset()[:-1],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_set-one-arg-long", "schedule_set", Q, [*sset(), ""],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_set-now-text", "schedule_set", Q, sset(now="soon"), ["ERR", "BAD_ARGS", "now_ms"]),
    ("schedule_set-now-negative", "schedule_set", Q, sset(now="-5"),
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("schedule_set-name-empty", "schedule_set", Q, sset(name=""), ["ERR", "BAD_ARGS", "name"]),
    ("schedule_set-name-newline", "schedule_set", Q, sset(name="a\nb"),
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_set-name-del", "schedule_set", Q, sset(name="a\x7fb"), ["ERR", "BAD_ARGS", "name"]),
    ("schedule_set-name-257", "schedule_set", Q, sset(name="n" * 257),
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_set-rev-text", "schedule_set", Q, sset(rev="first"),
     ["ERR", "BAD_ARGS", "expected_rev"]),
    ("schedule_set-rev-negative", "schedule_set", Q, sset(rev="-1"),
     ["ERR", "BAD_ARGS", "expected_rev"]),
    ("schedule_set-rev-empty", "schedule_set", Q, sset(rev=""),
     ["ERR", "BAD_ARGS", "expected_rev"]),
    ("schedule_set-next-text", "schedule_set", Q, sset(next_ms="later"),
     ["ERR", "BAD_ARGS", "next_ms"]),
    ("schedule_set-next-negative", "schedule_set", Q, sset(next_ms="-1"),
     ["ERR", "BAD_ARGS", "next_ms"]),
    ("schedule_set-next-after-end", "schedule_set", Q,
     sset(next_ms=str(T0 + 60_100), end_ms=str(T0 + 60_000)), ["ERR", "BAD_ARGS", "next_ms"]),
    ("schedule_set-anchor-empty", "schedule_set", Q, sset(anchor=""),
     ["ERR", "BAD_ARGS", "anchor_ms"]),
    ("schedule_set-anchor-negative", "schedule_set", Q, sset(anchor="-1"),
     ["ERR", "BAD_ARGS", "anchor_ms"]),
    # a concurrent change (the rev read is not the stored one): CHANGED, with the stored rev
    ("schedule_set-exists-rev-0", "schedule_set", Q, sset(name="s1", rev="0"),
     ["ERR", "CHANGED", "1"]),
    ("schedule_set-exists-rev-2", "schedule_set", Q, sset(name="s1", rev="2"),
     ["ERR", "CHANGED", "1"]),
    ("schedule_set-new-rev-1", "schedule_set", Q, sset(rev="1"), ["ERR", "CHANGED", "0"]),
    ("schedule_set-partitioned-anchor", "schedule_set", PQ, sset(), ["ERR", "PARTITIONED"]),
    # a definition equal to the stored one writes nothing (not even updated_ms)
    ("schedule_set-unchanged", "schedule_set", Q,
     sset(name="s1", rev="1", next_ms=str(T0 + 120_000)), ["OK", "unchanged", "1"]),
]

SCHEDULE_CASES += [
    ("schedule_read-no-args", "schedule_read", Q, [], ["ERR", "BAD_ARGS", "mode"]),
    ("schedule_read-now-text", "schedule_read", Q, ["soon", "due", "10"],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("schedule_read-now-negative", "schedule_read", Q, ["-1", "due", "10"],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("schedule_read-mode-unknown", "schedule_read", Q, [T, "all"], ["ERR", "BAD_ARGS", "mode"]),
    ("schedule_read-one-no-name", "schedule_read", Q, [T, "one"],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_read-one-two-names", "schedule_read", Q, [T, "one", "s1", "sa"],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_read-one-name-empty", "schedule_read", Q, [T, "one", ""],
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_read-one-name-control", "schedule_read", Q, [T, "one", "s\x001"],
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_read-page-offset-negative", "schedule_read", Q, [T, "page", "-1", "10"],
     ["ERR", "BAD_ARGS", "offset"]),
    ("schedule_read-page-offset-text", "schedule_read", Q, [T, "page", "first", "10"],
     ["ERR", "BAD_ARGS", "offset"]),
    ("schedule_read-page-limit-zero", "schedule_read", Q, [T, "page", "0", "0"],
     ["ERR", "BAD_ARGS", "limit"]),
    ("schedule_read-page-limit-1001", "schedule_read", Q, [T, "page", "0", "1001"],
     ["ERR", "BAD_ARGS", "limit"]),
    ("schedule_read-page-limit-missing", "schedule_read", Q, [T, "page", "0"],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_read-due-limit-zero", "schedule_read", Q, [T, "due", "0"],
     ["ERR", "BAD_ARGS", "limit"]),
    ("schedule_read-due-limit-101", "schedule_read", Q, [T, "due", "101"],
     ["ERR", "BAD_ARGS", "limit"]),
    ("schedule_read-due-limit-fraction", "schedule_read", Q, [T, "due", "1.5"],
     ["ERR", "BAD_ARGS", "limit"]),
    ("schedule_read-due-extra-arg", "schedule_read", Q, [T, "due", "10", "x"],
     ["ERR", "BAD_ARGS", "argument count"]),
]

_PLAN = "BAD_ARGS"
SCHEDULE_CASES += [
    ("schedule_fire-no-args", "schedule_fire", Q, [], ["ERR", "BAD_ARGS", "count"]),
    ("schedule_fire-now-text", "schedule_fire", Q, fire(plan(), now="soon"),
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("schedule_fire-now-negative", "schedule_fire", Q, fire(plan(), now="-1"),
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("schedule_fire-events-maxlen-negative", "schedule_fire", Q, fire(plan(), events="-1"),
     ["ERR", "BAD_ARGS", "events_maxlen"]),
    ("schedule_fire-events-maxlen-fraction", "schedule_fire", Q, fire(plan(), events="1.5"),
     ["ERR", "BAD_ARGS", "events_maxlen"]),
    ("schedule_fire-count-zero", "schedule_fire", Q, fire(n="0"), ["ERR", "BAD_ARGS", "count"]),
    ("schedule_fire-count-101", "schedule_fire", Q, fire(plan(), n="101"),
     ["ERR", "BAD_ARGS", "count"]),
    ("schedule_fire-count-text", "schedule_fire", Q, fire(plan(), n="one"),
     ["ERR", "BAD_ARGS", "count"]),
    ("schedule_fire-count-more-than-plans", "schedule_fire", Q, fire(plan(), n="2"),
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_fire-trailing-argument", "schedule_fire", Q, [*fire(plan()), "x"],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_fire-occurrence-missing", "schedule_fire", Q, fire(plan(m="12")),
     ["ERR", "BAD_ARGS", "occurrence times"]),
    ("schedule_fire-partitioned-anchor", "schedule_fire", PQ, fire(plan()),
     ["ERR", "PARTITIONED"]),
    ("schedule_fire-name-empty", "schedule_fire", Q, fire(plan(name="")),
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_fire-name-control", "schedule_fire", Q, fire(plan(name="s\n1")),
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_fire-rev-text", "schedule_fire", Q, fire(plan(rev="one")),
     ["ERR", "BAD_ARGS", "rev or expected_next"]),
    ("schedule_fire-expected-negative", "schedule_fire", Q, fire(plan(expected="-1")),
     ["ERR", "BAD_ARGS", "rev or expected_next"]),
    ("schedule_fire-expected-empty", "schedule_fire", Q, fire(plan(expected="")),
     ["ERR", "BAD_ARGS", "rev or expected_next"]),
    ("schedule_fire-new-next-text", "schedule_fire", Q, fire(plan(new_next="soon")),
     ["ERR", "BAD_ARGS", "new_next"]),
    ("schedule_fire-new-next-negative", "schedule_fire", Q, fire(plan(new_next="-1")),
     ["ERR", "BAD_ARGS", "new_next"]),
    ("schedule_fire-skip-half-given", "schedule_fire", Q,
     fire(plan("so", times=ms(T0), skip=("", str(T0 - 1000)))),
     ["ERR", "BAD_ARGS", "skipped range"]),
    ("schedule_fire-skip-reversed", "schedule_fire", Q,
     fire(plan("so", times=ms(T0), skip=(str(T0 - 1000), str(T0 - 2000)))),
     ["ERR", "BAD_ARGS", "skipped range"]),
    ("schedule_fire-skip-negative", "schedule_fire", Q,
     fire(plan("so", times=ms(T0), skip=("-1", str(T0 - 1000)))),
     ["ERR", "BAD_ARGS", "skipped range"]),
    ("schedule_fire-m-negative", "schedule_fire", Q, fire(plan(times=[], m="-1")),
     ["ERR", "BAD_ARGS", "occurrences"]),
    ("schedule_fire-m-text", "schedule_fire", Q, fire(plan(times=[], m="all")),
     ["ERR", "BAD_ARGS", "occurrences"]),
    ("schedule_fire-more-than-100", "schedule_fire", Q,
     fire(plan(times=ms(*range(T0 - 100_000, T0 + 1, 1000)))),
     ["ERR", "BAD_ARGS", "occurrences"]),
    ("schedule_fire-time-text", "schedule_fire", Q, fire(plan(times=["noon"])),
     ["ERR", "BAD_ARGS", "occurrence times"]),
    ("schedule_fire-time-negative", "schedule_fire", Q, fire(plan(times=["-5"])),
     ["ERR", "BAD_ARGS", "occurrence times"]),
    ("schedule_fire-time-fraction", "schedule_fire", Q, fire(plan(times=[f"{T0}.5"])),
     ["ERR", "BAD_ARGS", "occurrence times"]),
    ("schedule_fire-times-descending", "schedule_fire", Q,
     fire(plan(times=ms(T0, T0 - 1000))), ["ERR", "BAD_ARGS", "occurrence times"]),
    ("schedule_fire-times-repeated", "schedule_fire", Q,
     fire(plan(times=ms(T0 - 1000, T0 - 1000))), ["ERR", "BAD_ARGS", "occurrence times"]),
    ("schedule_fire-skip-after-occurrences", "schedule_fire", Q,
     fire(plan("so", times=ms(T0 - 5000), skip=(str(T0 - 2000), str(T0 - 1000)))),
     ["ERR", "BAD_ARGS", "occurrence times"]),
    ("schedule_fire-skip-overlaps-occurrence", "schedule_fire", Q,
     fire(plan("so", times=ms(T0 - 1000), skip=(str(T0 - 10_000), str(T0 - 1000)))),
     ["ERR", "BAD_ARGS", "occurrence times"]),
    # the plan against the stored schedule (rev and next fire time match)
    ("schedule_fire-occurrence-before-expected", "schedule_fire", Q,
     fire(plan(times=ms(T0 - 11_000, T0))), ["ERR", _PLAN, "plan of sa"]),
    ("schedule_fire-occurrence-after-now", "schedule_fire", Q,
     fire(plan(times=ms(T0, T0 + 1000), new_next=str(T0 + 2000))),
     ["ERR", _PLAN, "plan of sa"]),
    ("schedule_fire-occurrence-after-end", "schedule_fire", Q,
     fire(plan(times=ms(T0 + 6000), new_next=""), now=str(T0 + 10_000)),
     ["ERR", _PLAN, "plan of sa"]),
    ("schedule_fire-two-occurrences-once", "schedule_fire", Q,
     fire(plan("so", times=ms(T0 - 1000, T0))), ["ERR", _PLAN, "plan of so"]),
    ("schedule_fire-two-occurrences-skip", "schedule_fire", Q,
     fire(plan("ss", times=ms(T0 - 1000, T0))), ["ERR", _PLAN, "plan of ss"]),
    ("schedule_fire-skip-before-expected", "schedule_fire", Q,
     fire(plan(times=ms(T0), skip=(str(T0 - 20_000), str(T0 - 1000)))),
     ["ERR", _PLAN, "plan of sa"]),
    ("schedule_fire-skip-after-now", "schedule_fire", Q,
     fire(plan("so", times=[], skip=(str(T0 + 1000), str(T0 + 2000)),
               new_next=str(T0 + 3000))), ["ERR", _PLAN, "plan of so"]),
    ("schedule_fire-new-next-equal-last", "schedule_fire", Q, fire(plan(new_next=str(T0))),
     ["ERR", _PLAN, "new_next of sa"]),
    ("schedule_fire-new-next-before-last", "schedule_fire", Q,
     fire(plan(new_next=str(T0 - 500))), ["ERR", _PLAN, "new_next of sa"]),
    ("schedule_fire-new-next-after-end", "schedule_fire", Q,
     fire(plan(new_next=str(T0 + 6000))), ["ERR", _PLAN, "new_next of sa"]),
    ("schedule_fire-new-next-after-skip", "schedule_fire", Q,
     fire(plan("ss", times=[], skip=(str(T0 - 10_000), str(T0)), new_next=str(T0)),),
     ["ERR", _PLAN, "new_next of ss"]),
    ("schedule_fire-name-twice", "schedule_fire", Q, fire(SO_ONE, SO_ONE),
     ["ERR", "BAD_ARGS", "name twice"]),
    # a good plan first, a bad one after it: neither is applied
    ("schedule_fire-good-then-bad", "schedule_fire", Q,
     fire(SO_ONE, plan(times=ms(T0 - 11_000))), ["ERR", _PLAN, "plan of sa"]),
    # plans that no longer match: applied to nothing (and nothing written)
    ("schedule_fire-stale-paused-gone", "schedule_fire", Q,
     fire(plan("s1", expected=str(T0), times=ms(T0)),
          plan("so", rev="2", expected=str(T0 - 10_000), times=ms(T0)),
          plan("sp", expected=str(T0 + 1000), times=[]), plan("ghost", times=[])),
     ["OK", "STALE", "0", "STALE", "0", "PAUSED", "0", "GONE", "0"]),
]

SCHEDULE_CASES += [
    ("schedule_pause-no-args", "schedule_pause", Q, [], ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_pause-four-args", "schedule_pause", Q, [T, "s1", "1", ""],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_pause-six-args", "schedule_pause", Q, [T, "s1", "1", "", "", ""],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_pause-now-text", "schedule_pause", Q, ["soon", "s1", "1", "", ""],
     ["ERR", "BAD_ARGS", "now_ms"]),
    ("schedule_pause-name-empty", "schedule_pause", Q, [T, "", "1", "", ""],
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_pause-name-control", "schedule_pause", Q, [T, "s\r1", "1", "", ""],
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_pause-name-257", "schedule_pause", Q, [T, "s" * 257, "1", "", ""],
     ["ERR", "BAD_ARGS", "name"]),
    ("schedule_pause-paused-2", "schedule_pause", Q, [T, "s1", "2", "", ""],
     ["ERR", "BAD_ARGS", "paused"]),
    ("schedule_pause-paused-true", "schedule_pause", Q, [T, "s1", "true", "", ""],
     ["ERR", "BAD_ARGS", "paused"]),
    ("schedule_pause-pause-with-rev", "schedule_pause", Q, [T, "s1", "1", "1", ""],
     ["ERR", "BAD_ARGS", "expected_rev"]),
    ("schedule_pause-pause-with-next", "schedule_pause", Q, [T, "s1", "1", "", str(T0)],
     ["ERR", "BAD_ARGS", "expected_rev"]),
    ("schedule_pause-resume-rev-zero", "schedule_pause", Q, [T, "sp", "0", "0", str(T0 + 1000)],
     ["ERR", "BAD_ARGS", "expected_rev"]),
    ("schedule_pause-resume-rev-empty", "schedule_pause", Q, [T, "sp", "0", "", str(T0 + 1000)],
     ["ERR", "BAD_ARGS", "expected_rev"]),
    ("schedule_pause-resume-rev-text", "schedule_pause", Q,
     [T, "sp", "0", "one", str(T0 + 1000)], ["ERR", "BAD_ARGS", "expected_rev"]),
    ("schedule_pause-resume-next-negative", "schedule_pause", Q, [T, "sp", "0", "1", "-1"],
     ["ERR", "BAD_ARGS", "next_ms"]),
    ("schedule_pause-resume-next-text", "schedule_pause", Q, [T, "sp", "0", "1", "soon"],
     ["ERR", "BAD_ARGS", "next_ms"]),
    ("schedule_pause-resume-next-after-end", "schedule_pause", Q,
     [T, "sa", "0", "1", str(T0 + 5_001)], ["ERR", "BAD_ARGS", "next_ms"]),
    ("schedule_pause-pause-unknown", "schedule_pause", Q, [T, "ghost", "1", "", ""],
     ["ERR", "NO_SCHEDULE"]),
    ("schedule_pause-resume-unknown", "schedule_pause", Q, [T, "ghost", "0", "1", str(T0)],
     ["ERR", "NO_SCHEDULE"]),
    ("schedule_pause-resume-stale-rev", "schedule_pause", Q, [T, "sp", "0", "2", str(T0 + 1000)],
     ["ERR", "CHANGED", "1"]),
    # already in that state: nothing written
    ("schedule_pause-pause-paused", "schedule_pause", Q, [T, "sp", "1", "", ""], ["OK", "0"]),
    ("schedule_pause-resume-running", "schedule_pause", Q, [T, "s1", "0", "1", str(T0 + 1000)],
     ["OK", "0"]),
    ("schedule_remove-no-args", "schedule_remove", Q, [], ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_remove-two-names", "schedule_remove", Q, ["s1", "sa"],
     ["ERR", "BAD_ARGS", "argument count"]),
    ("schedule_remove-name-empty", "schedule_remove", Q, [""], ["ERR", "BAD_ARGS", "name"]),
    ("schedule_remove-name-control", "schedule_remove", Q, ["s\t1"], ["ERR", "BAD_ARGS", "name"]),
    ("schedule_remove-name-257", "schedule_remove", Q, ["s" * 257], ["ERR", "BAD_ARGS", "name"]),
    ("schedule_remove-unknown", "schedule_remove", Q, ["ghost"], ["OK", "0"]),
]

# The controls of the rows above: the same scripts with good arguments write.
SCHEDULE_WRITES: list[tuple[str, str, list[str]]] = [
    ("schedule_set", "schedule_set", sset()),
    ("schedule_set-replace", "schedule_set", sset(name="s1", rev="1", payload='{"v":2}')),
    ("schedule_fire", "schedule_fire", fire(plan())),
    ("schedule_fire-once", "schedule_fire", fire(SO_ONE)),
    ("schedule_pause", "schedule_pause", [T, "s1", "1", "", ""]),
    ("schedule_resume", "schedule_pause", [T, "sp", "0", "1", str(T0 + 1000)]),
    ("schedule_remove", "schedule_remove", ["s1"]),
]

# -- dependencies: deps_link, deps_resolve, deps_pending, deps_ack, enqueue's extras --------
# Run on inputs_util.populate_deps (test_bad_input.py::test_deps_script_with_bad_argv): q
# holds b1 (waiting) with dependents q:wd and q2:px, wd and wx in waiting_deps, an 'L' op in
# its outbox; q2 holds x1 and an 'R' op. Every refusal is checked before the first write.

BIG_INT = "1" + "0" * 20  # beyond 2^53
_BAD_NOW = (("text", "soon"), ("negative", "-5"), ("fraction", "1.5"), ("exponent", "1e6"),
            ("blank-padded", " 5"), ("beyond-2^53", BIG_INT))
# a count of items: missing (None), empty, non-integer, negative, zero, too large
_BAD_COUNTS = (("missing", None), ("empty", ""), ("text", "one"), ("fraction", "1.5"),
               ("negative", "-1"), ("zero", "0"), ("1001", "1001"), ("beyond-2^53", BIG_INT))
# refs "<queue>:<id>" the scripts refuse
_BAD_REFS = (("empty", ""), ("no-colon", "qb1"), ("queue-empty", ":b1"), ("id-empty", "q:"),
             ("queue-space", "my q:b1"), ("queue-braces", "{q}:b1"),
             ("queue-control", "q\n:b1"), ("queue-129", "q" * 129 + ":b1"),
             ("id-control", "q:b\x001"), ("id-tab", "q:b\t1"), ("id-257", "q:" + "b" * 257))
_BAD_IDS = (("empty", "", "BAD_JOB_ID"), ("control", "b\n1", "BAD_JOB_ID"),
            ("del", "b\x7f1", "BAD_JOB_ID"), ("257", "b" * 257, "BAD_JOB_ID"))

LINK = ["b1", "q2:px2", "fail"]  # one good link: b1 gets a new dependent
RESOLVE = ["wd", "q:b1", "completed", '{"r":1}']  # one good outcome: wd is released
OP_L = "L\tfail\twx\tq2\tx1"  # the op in q's outbox


def _n(v: str | None) -> list[str]:
    return [] if v is None else [v]


DEPS_CASES: list[tuple[str, str, str, list[str], list[str]]] = []
for _script, _item, _width in (("deps_link", LINK, 3), ("deps_resolve", RESOLVE, 4),
                               ("deps_ack", [OP_L, "done"], 2)):
    DEPS_CASES.append((f"{_script}-no-args", _script, Q, [], ["ERR", "BAD_ARGS", "count"]))
    for _label, _bad in _BAD_NOW:
        DEPS_CASES.append((f"{_script}-now-{_label}", _script, Q, [_bad, "1", *_item],
                           ["ERR", "BAD_ARGS", "now_ms"]))
    for _label, _bad in _BAD_COUNTS:  # (missing: nothing after now_ms)
        DEPS_CASES.append((f"{_script}-count-{_label}", _script, Q,
                           [T, *_n(_bad), *(_item if _bad is not None else [])],
                           ["ERR", "BAD_ARGS", "count"]))
    DEPS_CASES += [
        (f"{_script}-fields-missing", _script, Q, [T, "1", *_item[:-1]],
         ["ERR", "BAD_ARGS", "argument count"]),
        (f"{_script}-count-more-than-items", _script, Q, [T, "2", *_item],
         ["ERR", "BAD_ARGS", "argument count"]),
        (f"{_script}-count-less-than-items", _script, Q, [T, "1", *_item, *_item],
         ["ERR", "BAD_ARGS", "argument count"]),
        (f"{_script}-one-field-more", _script, Q,
         [T, "1", *_item, *(["x", "y"] if _width == 4 else ["x"])],
         ["ERR", "BAD_ARGS", "argument count"]),
    ]

for _script, _item in (("deps_link", LINK), ("deps_resolve", RESOLVE)):
    for _label, _bad, _code in _BAD_IDS:
        DEPS_CASES.append((f"{_script}-id-{_label}", _script, Q, [T, "1", _bad, *_item[1:]],
                           ["ERR", _code, "0"]))
    # the second item's id: refused before the first item is applied
    DEPS_CASES.append((f"{_script}-second-id-empty", _script, Q,
                       [T, "2", *_item, "", *_item[1:]], ["ERR", "BAD_JOB_ID", "1"]))
    for _label, _bad in _BAD_REFS:
        DEPS_CASES.append((f"{_script}-ref-{_label}", _script, Q,
                           [T, "1", _item[0], _bad, *_item[2:]], ["ERR", "BAD_ARGS", "ref"]))
    DEPS_CASES.append((f"{_script}-second-ref-bad", _script, Q,
                       [T, "2", *_item, _item[0], "nocolon", *_item[2:]],
                       ["ERR", "BAD_ARGS", "ref"]))

for _label, _bad in (("empty", ""), ("upper-case", "FAIL"), ("unknown", "retry"),
                     ("padded", " wait"), ("ignored", "ignored")):
    DEPS_CASES.append((f"deps_link-policy-{_label}", "deps_link", Q, [T, "1", "b1", "q2:px2", _bad],
                       ["ERR", "BAD_ARGS", "policy"]))
DEPS_CASES.append(("deps_link-second-policy-bad", "deps_link", Q,
                   [T, "2", *LINK, "b1", "q2:px3", "never"], ["ERR", "BAD_ARGS", "policy"]))

for _label, _bad in (("empty", ""), ("upper-case", "COMPLETED"), ("unknown", "done"),
                     ("ignored", "ignored"), ("pending", "pending")):
    DEPS_CASES.append((f"deps_resolve-outcome-{_label}", "deps_resolve", Q,
                       [T, "1", "wd", "q:b1", _bad, ""], ["ERR", "BAD_ARGS", "outcome"]))
DEPS_CASES.append(("deps_resolve-second-outcome-bad", "deps_resolve", Q,
                   [T, "2", *RESOLVE, "wx", "q2:x1", "finished", ""],
                   ["ERR", "BAD_ARGS", "outcome"]))
for _label, _bad in (("text", "many"), ("negative", "-1"), ("fraction", "1.5"),
                     ("blank-padded", " 10"), ("beyond-2^53", BIG_INT)):
    DEPS_CASES.append((f"deps_resolve-events-maxlen-{_label}", "deps_resolve", Q,
                       [T, "1", *RESOLVE, _bad], ["ERR", "BAD_ARGS", "events_maxlen"]))

# deps_pending: now_ms, limit, mode, [events_maxlen]
DEPS_CASES.append(("deps_pending-no-args", "deps_pending", Q, [], ["ERR", "BAD_ARGS", "limit"]))
for _label, _bad in _BAD_NOW:
    DEPS_CASES.append((f"deps_pending-now-{_label}", "deps_pending", Q, [_bad, "10", "1"],
                       ["ERR", "BAD_ARGS", "now_ms"]))
for _label, _bad in _BAD_COUNTS:
    DEPS_CASES.append((f"deps_pending-limit-{_label}", "deps_pending", Q,
                       [LATER, *_n(_bad), *(["1"] if _bad is not None else [])],
                       ["ERR", "BAD_ARGS", "limit"]))
for _label, _bad in (("missing", None), ("empty", ""), ("two", "2"), ("yes", "yes"),
                     ("upper-case", "ALL"), ("true", "true"), ("minus-one", "-1")):
    DEPS_CASES.append((f"deps_pending-mode-{_label}", "deps_pending", Q,
                       [LATER, "10", *_n(_bad)], ["ERR", "BAD_ARGS", "repair"]))
DEPS_CASES.append(("deps_pending-one-arg-more", "deps_pending", Q, [LATER, "10", "1", "10", "x"],
                   ["ERR", "BAD_ARGS", "argument count"]))
for _label, _bad in (("text", "many"), ("negative", "-1"), ("fraction", "1.5"),
                     ("blank-padded", " 10"), ("beyond-2^53", BIG_INT)):
    DEPS_CASES.append((f"deps_pending-events-maxlen-{_label}", "deps_pending", Q,
                       [LATER, "10", "1", _bad], ["ERR", "BAD_ARGS", "events_maxlen"]))

# deps_ack: the op must be given, the action 'done' or 'retry'
DEPS_CASES += [
    ("deps_ack-op-empty", "deps_ack", Q, [T, "1", "", "done"], ["ERR", "BAD_ARGS", "op"]),
    ("deps_ack-second-op-empty", "deps_ack", Q, [T, "2", OP_L, "done", "", "retry"],
     ["ERR", "BAD_ARGS", "op"]),
]
for _label, _bad in (("empty", ""), ("upper-case", "DONE"), ("unknown", "drop"),
                     ("padded", "done "), ("one", "1")):
    DEPS_CASES.append((f"deps_ack-action-{_label}", "deps_ack", Q, [T, "1", OP_L, _bad],
                       ["ERR", "BAD_ARGS", "action"]))
DEPS_CASES.append(("deps_ack-second-action-bad", "deps_ack", Q,
                   [T, "2", OP_L, "done", OP_L, "later"], ["ERR", "BAD_ARGS", "action"]))

# enqueue's dependency extras (one job "j" of q, or "j" then a second job)
_REFS_1001 = ",".join(f'["q2","x{i}"]' for i in range(1001))
_PARENTS_1001 = ",".join(f'["q2","x{i}","fail"]' for i in range(1001))
_BAD_EXTRAS: list[tuple[str, str, str]] = [
    ("depends-on-string", '{"depends_on":"q:b1"}', "depends_on"),
    ("depends-on-number", '{"depends_on":5}', "depends_on"),
    ("depends-on-true", '{"depends_on":true}', "depends_on"),
    ("depends-on-object", '{"depends_on":{"a":["q","b1"]}}', "depends_on"),
    ("depends-on-1001", '{"depends_on":[' + _REFS_1001 + "]}", "depends_on"),
    ("depends-on-ref-string", '{"depends_on":["q:b1"]}', "depends_on"),
    ("depends-on-ref-object", '{"depends_on":[{"queue":"q","id":"b1"}]}', "depends_on"),
    ("depends-on-ref-empty", '{"depends_on":[[]]}', "depends_on"),
    ("depends-on-ref-1-element", '{"depends_on":[["q"]]}', "depends_on"),
    ("depends-on-ref-4-elements", '{"depends_on":[["q","b1",1,1]]}', "depends_on"),
    ("depends-on-queue-empty", '{"depends_on":[["","b1"]]}', "depends_on"),
    ("depends-on-queue-space", '{"depends_on":[["my q","b1"]]}', "depends_on"),
    ("depends-on-queue-braces", '{"depends_on":[["{q}","b1"]]}', "depends_on"),
    ("depends-on-queue-colon", '{"depends_on":[["q:x","b1"]]}', "depends_on"),
    ("depends-on-queue-129", '{"depends_on":[["' + "q" * 129 + '","b1"]]}', "depends_on"),
    ("depends-on-queue-number", '{"depends_on":[[1,"b1"]]}', "depends_on"),
    ("depends-on-id-empty", '{"depends_on":[["q",""]]}', "depends_on"),
    ("depends-on-id-control", '{"depends_on":[["q","b\\n1"]]}', "depends_on"),
    ("depends-on-id-257", '{"depends_on":[["q","' + "b" * 257 + '"]]}', "depends_on"),
    ("depends-on-id-number", '{"depends_on":[["q",1]]}', "depends_on"),
    ("depends-on-linked-2", '{"depends_on":[["q2","x1",2]]}', "depends_on"),
    ("depends-on-linked-0", '{"depends_on":[["q2","x1",0]]}', "depends_on"),
    ("depends-on-linked-true", '{"depends_on":[["q2","x1",true]]}', "depends_on"),
    ("depends-on-linked-text", '{"depends_on":[["q2","x1","1"]]}', "depends_on"),
    ("depends-on-duplicate", '{"depends_on":[["q","b1"],["q","b1"]]}', "depends_on"),
    ("depends-on-duplicate-linked", '{"depends_on":[["q2","x1"],["q2","x1",1]]}', "depends_on"),
    ("dependents-string", '{"dependents":"q2:px"}', "dependents"),
    ("dependents-object", '{"dependents":{"p":["q2","px","fail"]}}', "dependents"),
    ("dependents-1001", '{"dependents":[' + _PARENTS_1001 + "]}", "dependents"),
    ("dependents-2-elements", '{"dependents":[["q2","px"]]}', "dependents"),
    ("dependents-4-elements", '{"dependents":[["q2","px","fail","x"]]}', "dependents"),
    ("dependents-policy-unknown", '{"dependents":[["q2","px","sometimes"]]}', "dependents"),
    ("dependents-policy-upper-case", '{"dependents":[["q2","px","FAIL"]]}', "dependents"),
    ("dependents-policy-number", '{"dependents":[["q2","px",1]]}', "dependents"),
    ("dependents-queue-bad", '{"dependents":[["q q","px","fail"]]}', "dependents"),
    ("dependents-id-bad", '{"dependents":[["q2","p\\tx","fail"]]}', "dependents"),
    ("dependents-duplicate", '{"dependents":[["q2","px","fail"],["q2","px","wait"]]}',
     "dependents"),
    ("dep-policy-without-depends-on", '{"dep_policy":"wait"}', "dep_policy"),
    ("dep-policy-with-only-dependents", '{"dep_policy":"wait","dependents":[["q2","p","fail"]]}',
     "dep_policy"),
    ("dep-policy-unknown", '{"depends_on":[["q","b1"]],"dep_policy":"retry"}', "dep_policy"),
    ("dep-policy-upper-case", '{"depends_on":[["q","b1"]],"dep_policy":"WAIT"}', "dep_policy"),
    ("dep-policy-number", '{"depends_on":[["q","b1"]],"dep_policy":1}', "dep_policy"),
    ("dep-policy-false", '{"depends_on":[["q","b1"]],"dep_policy":false}', "dep_policy"),
    ("dep-policy-null", '{"depends_on":[["q","b1"]],"dep_policy":null}', "dep_policy"),
]
for _label, _extras, _detail in _BAD_EXTRAS:
    DEPS_CASES.append((f"enqueue-{_label}", "enqueue", Q, jx(_extras),
                       ["ERR", "BAD_ARGS", _detail]))
DEPS_CASES += [
    # a dependency on this queue must exist, or come earlier in the call
    ("enqueue-dep-not-found", "enqueue", Q, jx('{"depends_on":[["q","ghost"]]}'),
     ["ERR", "DEP_NOT_FOUND", "q:ghost"]),
    ("enqueue-dep-not-found-linked", "enqueue", Q, jx('{"depends_on":[["q","ghost",1]]}'),
     ["ERR", "DEP_NOT_FOUND", "q:ghost"]),
    ("enqueue-dep-not-found-after-one-found", "enqueue", Q,
     jx('{"depends_on":[["q","b1"],["q2","x1"],["q","ghost"]]}'),
     ["ERR", "DEP_NOT_FOUND", "q:ghost"]),
    ("enqueue-dep-later-in-the-call", "enqueue", Q,
     [T, "2", *j11(id="n1", x='{"depends_on":[["q","n2"]]}'), *j11(id="n2")],
     ["ERR", "DEP_NOT_FOUND", "q:n2"]),
    ("enqueue-dep-not-found-second-job", "enqueue", Q,
     [T, "2", *j11(id="n1", x='{"depends_on":[["q","b1"]]}'),
      *j11(id="n2", x='{"depends_on":[["q","n1"],["q","gone"]]}')],
     ["ERR", "DEP_NOT_FOUND", "q:gone"]),
    # a job that depends on itself
    ("enqueue-self-dependency", "enqueue", Q, jx('{"depends_on":[["q","j"]]}'),
     ["ERR", "DEP_CYCLE", "j"]),
    ("enqueue-self-dependency-linked", "enqueue", Q, jx('{"depends_on":[["q","j",1]]}'),
     ["ERR", "DEP_CYCLE", "j"]),
    ("enqueue-self-dependency-second-job", "enqueue", Q,
     [T, "2", *j11(id="n1"), *j11(id="n2", x='{"depends_on":[["q","n1"],["q","n2"]]}')],
     ["ERR", "DEP_CYCLE", "n2"]),
    # a job of the call that a dedup key made its holder's: a dependency on it is one on
    # the holder, so naming both is a dependency given twice
    ("enqueue-dep-on-deduplicated-and-its-holder", "enqueue", Q,
     [T, "3", *j11(id="n1", x='{"dedup_key":"k9"}'), *j11(id="n2", x='{"dedup_key":"k9"}'),
      *j11(id="n3", x='{"depends_on":[["q","n2"],["q","n1"]]}')],
     ["ERR", "BAD_ARGS", "depends_on"]),
    # lane waiting_deps holds the jobs in that state only
    ("remove_job-waiting-deps-from-wait", "remove_job", Q, ["wd", "wait", T],
     ["ERR", "LANE_MISMATCH"]),
    ("remove_job-waiting-from-waiting-deps", "remove_job", Q, ["w1", "waiting_deps", T],
     ["ERR", "LANE_MISMATCH"]),
    ("remove_job-unknown-from-waiting-deps", "remove_job", Q, ["ghost", "waiting_deps", T],
     ["ERR", "NO_JOB"]),
    ("remove_jobs_batch-not-waiting-deps", "remove_jobs_batch", Q,
     ["waiting_deps", "3", "w1", "f1", "ghost", T],
     ["OK", "3", "w1", "ERR", "LANE_MISMATCH", "f1", "ERR", "LANE_MISMATCH", "ghost", "ERR",
      "NO_JOB"]),
    ("retry_failed-waiting-deps", "retry_failed", Q, ["wd", T], ["ERR", "NOT_FAILED"]),
    # refused for another reason after a good job with dependencies: nothing linked
    ("enqueue-deps-then-bad-job", "enqueue", Q,
     [T, "2", *j11(id="n1", x='{"depends_on":[["q","b1"],["q2","x1"]],"dep_policy":"wait",'
                            '"dependents":[["q2","pp","ignore"]]}'),
      *j11(id="n2", tm="0")], ["ERR", "BAD_ARGS", "timeout_ms"]),
    ("enqueue-deps-then-duplicate", "enqueue", Q,
     [T, "2", *j11(id="n1", x='{"depends_on":[["q","b1"]]}'), *j11(id="wd")],
     ["ERR", "DUPLICATE", "wd"]),
]

# The controls of the rows above: the same calls with good arguments write.
DEPS_WRITES: list[tuple[str, str, list[str]]] = [
    ("deps_link", "deps_link", [T, "1", *LINK]),
    ("deps_resolve", "deps_resolve", [T, "1", *RESOLVE, "100"]),
    ("deps_pending", "deps_pending", [LATER, "10", "1", "100"]),
    ("deps_pending-all", "deps_pending", [T, "10", "all"]),
    ("deps_ack", "deps_ack", [T, "1", OP_L, "done"]),
    ("remove_job-waiting-deps", "remove_job", ["wd", "waiting_deps", T]),
    ("remove_jobs_batch-waiting-deps", "remove_jobs_batch", ["waiting_deps", "1", "wx", T]),
    ("cancel-waiting-deps", "cancel", ["wd", T]),
    ("enqueue", "enqueue", jx('{"depends_on":[["q","b1"],["q2","x1"]],"dep_policy":"wait",'
                              '"dependents":[["q2","pp","ignore"]]}')),
]
