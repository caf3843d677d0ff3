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
