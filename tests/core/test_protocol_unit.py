"""Pure unit tests of omniq._protocol, omniq.codec and omniq._keys (no server)."""

from __future__ import annotations

import math
import re
import time

import msgspec
import pytest

from omniq._keys import (
    QueueKeys,
    child_anchor,
    queue_anchor,
    queue_base,
    validate_child_key,
    validate_gid,
    validate_job_id,
    validate_queue_name,
)
from omniq._limits import ENQUEUE_FIELDS, MAX_DEPTH
from omniq._protocol import admin, common, enqueue, leases
from omniq._protocol.schedules import schedule_job_id
from omniq._scripts import SCRIPTS
from omniq.codec import (
    decode_payload,
    encode_payload,
    encode_result,
    truncate_error,
)
from omniq.errors import (
    CounterError,
    DuplicateJobError,
    InvalidArgument,
    InvalidPayload,
    JobNotFound,
    LaneMismatch,
    LeaseLost,
    OmniqError,
    ProtocolError,
    ScriptError,
)
from omniq.types import BatchResult, CancelRequested, FailOutcome

# -- keys ----------------------------------------------------------------------------------


def test_queue_keys():
    k = QueueKeys("emails")
    assert k.base == "{emails}"
    assert k.anchor == "{emails}:meta"
    assert k.wait == "{emails}:wait"
    assert k.delayed == "{emails}:delayed"
    assert k.active == "{emails}:active"
    assert k.completed == "{emails}:completed"
    assert k.failed == "{emails}:failed"
    assert k.paused == "{emails}:paused"
    assert k.groups_ready == "{emails}:groups:ready"
    assert k.stats == "{emails}:stats"
    assert k.idx_wait == "{emails}:idx:wait"
    assert k.wake == "{emails}:wake"
    assert k.job("J1") == "{emails}:job:J1"
    assert k.group("g", "inflight") == "{emails}:g:g:inflight"
    assert queue_base("a.b") == "{a.b}"
    assert queue_anchor("a-b_c") == "{a-b_c}:meta"
    assert child_anchor(" parent ") == "{cc:parent}:meta"


@pytest.mark.parametrize("name", ["", "x" * 129, "a b", "{a}", "a:b", "a\n", "é", None, 1])
def test_bad_queue_name(name):
    with pytest.raises(InvalidArgument):
        validate_queue_name(name)


def test_good_queue_name():
    assert validate_queue_name("x" * 128) == "x" * 128
    assert validate_queue_name("A.z-0_9") == "A.z-0_9"


def test_identifiers():
    assert validate_job_id("a b:{c}") == "a b:{c}"
    assert validate_job_id("x" * 256) == "x" * 256
    for bad in ("", " a", "a ", "a\x00", "a\x7f", "x" * 257, 3, None):
        with pytest.raises(InvalidArgument):
            validate_job_id(bad)
    assert validate_gid(None) == ""
    assert validate_gid("  ") == ""
    assert validate_gid(" g ") == "g"
    for bad in ("g\nx", "g" * 257, 1):
        with pytest.raises(InvalidArgument):
            validate_gid(bad)
    assert validate_child_key(" k ") == "k"
    for bad in ("", "  ", "a{", "}", "k" * 129, "k\x01", 5):
        with pytest.raises(InvalidArgument):
            validate_child_key(bad)


# -- argument building ---------------------------------------------------------------------


def test_job_options_and_fields():
    o = enqueue.JobOptions(max_attempts=3, timeout_ms=100, backoff_ms=0, delay_ms=5, gid=" g ",
                     group_limit=2, keep_failed_ms=60_000)
    assert enqueue.job_fields("id", b"{}", o) == ["id", b"{}", 3, 100, 0, 0, 5, "g", 2, 0, 60_000,
                                                  b""]
    assert enqueue.args(7, enqueue.job_fields("id", b"{}", o), 10)[-1] == 10  # events_maxlen
    assert len(enqueue.job_fields("id", b"{}", o)) == ENQUEUE_FIELDS
    for bad in (
        {"max_attempts": 0},
        {"timeout_ms": 0},
        {"backoff_ms": -1},
        {"due_ms": 1, "delay_ms": 1},
        {"group_limit": -1},
        {"keep_completed_ms": -1},
        {"keep_failed_ms": 1.5},
        {"max_attempts": True},
        {"max_attempts": 2.0},
    ):
        kw = {"max_attempts": 1, "timeout_ms": 1, "backoff_ms": 0, **bad}
        with pytest.raises(InvalidArgument):
            enqueue.JobOptions(**kw)


def test_job_control_extras():
    base = {"max_attempts": 1, "timeout_ms": 1, "backoff_ms": 0}
    assert enqueue.JobOptions(**base).extras == b""  # a plain job: one empty field
    o = enqueue.JobOptions(**base, gid="g", dedup_key="k", dedup_ttl_ms=5, dedup="replace",
                           expire_in_ms=7, run_timeout_ms=9, backoff="exp", backoff_max_ms=11,
                           backoff_jitter=True, group_order="strict", on_failure="block")
    assert msgspec.json.decode(o.extras) == {
        "dedup_key": "k", "dedup_ttl_ms": 5, "dedup": "replace", "expire_in_ms": 7,
        "run_timeout_ms": 9, "backoff": "exp", "backoff_max_ms": 11, "backoff_jitter": True,
        "group_order": "strict", "on_failure": "block"}
    # defaults are left out
    o = enqueue.JobOptions(**base, backoff="fixed", group_order="fifo", expires_ms=3)
    assert msgspec.json.decode(o.extras) == {"expires_ms": 3}
    for bad in (
        {"dedup_key": ""},
        {"dedup_key": "x" * 200 + "é" * 30},  # 260 bytes of UTF-8
        {"dedup_key": 5},
        {"dedup_ttl_ms": 5},  # no key
        {"dedup": "replace"},  # no key
        {"dedup": "merge", "dedup_key": "k"},
        {"expires_ms": 1, "expire_in_ms": 1},
        {"expires_ms": -1},
        {"run_timeout_ms": 1.5},
        {"backoff": "linear"},
        {"backoff_max_ms": -1},
        {"backoff_jitter": 1},
        {"group_order": "strict"},  # no gid
        {"group_order": "lifo", "gid": "g"},
        {"on_failure": "block", "gid": "g"},  # not strict
        {"on_failure": "retry", "gid": "g", "group_order": "strict"},
    ):
        with pytest.raises(InvalidArgument):
            enqueue.JobOptions(**{**base, **bad})


def test_checks():
    assert common.check_now(0) == 0
    with pytest.raises(InvalidArgument):
        common.check_now(-1)
    assert common.check_lane("gwait") == "gwait"
    with pytest.raises(InvalidArgument):
        common.check_lane("active")
    assert common.check_batch(("a", "b")) == ["a", "b"]
    assert common.check_batch([]) == []
    assert len(common.check_batch(["x"] * 100)) == 100
    with pytest.raises(InvalidArgument):
        common.check_batch(["x"] * 101)
    with pytest.raises(InvalidArgument):
        common.check_batch("ab")
    with pytest.raises(InvalidArgument):
        common.check_batch(["ok", " bad"])


def test_new_job_id():
    ids = {common.new_job_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)


# -- reply parsing -------------------------------------------------------------------------


def test_texts():
    assert common.texts([b"OK", "x", 3, b"\xff"]) == ["OK", "x", "3", "\ufffd"]
    with pytest.raises(OmniqError):
        common.texts(b"OK")


def test_parse_ok_and_errors():
    assert common.parse_ok("op", [b"OK", b"1"]) == ["OK", "1"]
    assert common.parse_count("op", ["OK", "7"]) == 7
    with pytest.raises(ProtocolError):
        common.parse_ok("op", ["WEIRD"])
    with pytest.raises(ProtocolError):
        common.texts("not a list")
    cases = {
        "TOKEN_MISMATCH": LeaseLost,
        "NOT_ACTIVE": LeaseLost,
        "TOKEN_REQUIRED": LeaseLost,
        "NO_JOB": JobNotFound,
        "DUPLICATE": DuplicateJobError,
        "LANE_MISMATCH": LaneMismatch,
        "NOT_IN_LANE": LaneMismatch,
        "NOT_FAILED": LaneMismatch,
        "ACTIVE": LaneMismatch,
        "NO_COUNTER": CounterError,
        "ALREADY_INIT": CounterError,
        "SOMETHING_NEW": ScriptError,
    }
    for code, cls in cases.items():
        with pytest.raises(cls) as ei:
            common.parse_ok("op", ["ERR", code], "jid")
        assert type(ei.value) is cls
        assert ei.value.code == code
        assert ei.value.job_id == "jid"
        assert code in str(ei.value)
    for code in ("BAD_ARGS", "BAD_JOB_ID", "BAD_LANE", "BATCH_TOO_LARGE"):
        with pytest.raises(InvalidArgument):
            common.parse_ok("op", ["ERR", code, "detail"])


def _job_fields(i: int, gid: str = "", schedule: str = "") -> list[str]:
    return [f"id{i}", '{"a":1}', "1500", "1", "3", gid, "t" * 40, "1000", "0", schedule]


def test_parse_reserve():
    assert leases.parse_reserve("q", ["EMPTY"]).status == "EMPTY"
    assert leases.parse_reserve("q", ["EMPTY"]).more is False
    assert leases.parse_reserve("q", ["EMPTY", "MORE"]) == ("EMPTY", [], 0, "", True)
    paused = leases.parse_reserve("q", ["PAUSED"])
    assert paused.status == "PAUSED"
    assert paused.jobs == []
    res = leases.parse_reserve("q", ["JOB", "2", *_job_fields(0), *_job_fields(1, "g")])
    assert res.status == "JOB"
    a, b = res.jobs
    assert (a.queue, a.job_id, a.payload, a.lock_until_ms, a.attempt, a.max_attempts) == (
        "q", "id0", {"a": 1}, 1500, 1, 3
    )
    assert (a.gid, b.gid, b.lease_token, b.timeout_ms) == ("", "g", "t" * 40, 1000)
    assert (a.schedule, a.occurrence_ms) == ("", 0)
    # a scheduled job: its occurrence is the time of its id (a ULID)
    scheduled = [schedule_job_id("q", "nightly", 1_765_000_000_000), *_job_fields(0)[1:-1],
                 "nightly"]
    job = leases.parse_reserve("q", ["JOB", "1", *scheduled]).jobs[0]
    assert (job.schedule, job.occurrence_ms) == ("nightly", 1_765_000_000_000)
    fields = _job_fields(0)
    fields[4] = ""  # a hash without max_attempts
    assert leases.parse_reserve("q", ["JOB", "1", *fields]).jobs[0].max_attempts == 0
    with pytest.raises(InvalidArgument):
        leases.parse_reserve("q", ["ERR", "BAD_ARGS", "count"])
    with pytest.raises(OmniqError):
        leases.parse_reserve("q", ["NOPE"])


def test_parse_fail():
    assert leases.parse_fail(["RETRY", "123"], "j") == FailOutcome("RETRY", 123)
    assert leases.parse_fail(["FAILED"], "j") == FailOutcome("FAILED", None)
    with pytest.raises(LeaseLost):
        leases.parse_fail(["ERR", "TOKEN_MISMATCH"], "j")


def test_parse_heartbeats():
    out = leases.parse_heartbeats(["OK", "3", "OK", "10", "ERR", "TOKEN_MISMATCH", "OK", "30"],
                             ["a", "b", "c"])
    assert out[0] == 10
    assert out[2] == 30
    assert isinstance(out[1], LeaseLost)
    assert out[1].job_id == "b"
    assert not isinstance(out[0], CancelRequested)


def test_parse_heartbeat_cancel_and_cancel_reply():
    out = leases.parse_heartbeats(["OK", "2", "CANCEL", "10", "OK", "20"], ["a", "b"])
    assert isinstance(out[0], CancelRequested)
    assert out[0] == 10
    assert not isinstance(out[1], CancelRequested)
    assert admin.cancel_args("j", 5, "", 10) == ("j", 5, "", 10)
    for result in ("cancelled", "cancelling", "finished", "not_found"):
        assert admin.parse_cancel(["OK", result, "wait"], "j") == result
    with pytest.raises(ProtocolError):
        admin.parse_cancel(["OK", "maybe", ""], "j")
    with pytest.raises(InvalidArgument):
        admin.parse_cancel(["ERR", "BAD_ARGS", "now_ms"], "j")


def test_parse_ack_reserve():
    reply = ["3", "OK", "", "RETRY", "99", "ERR", "NOT_ACTIVE", "JOB", "1", *_job_fields(5)]
    outcomes, res = leases.parse_ack_reserve("q", reply, ["a", "b", "c"])
    assert outcomes[0] is None
    assert outcomes[1] == FailOutcome("RETRY", 99)
    assert isinstance(outcomes[2], LeaseLost)
    assert outcomes[2].job_id == "c"
    assert res is not None
    assert res.jobs[0].job_id == "id5"
    outcomes, res = leases.parse_ack_reserve("q", ["1", "FAILED", ""], ["a"])
    assert outcomes == [FailOutcome("FAILED", None)]
    assert res is None
    _, res = leases.parse_ack_reserve("q", ["0", "PAUSED"], [])
    assert res is not None
    assert res.status == "PAUSED"


def test_parse_batch_with_err_named_job():
    reply = ["OK", "3", "ERR", "OK", "", "x", "ERR", "NO_JOB", "OK", "ERR", "NOT_FAILED"]
    assert admin.parse_batch("b", reply) == [
        BatchResult("ERR", "OK", None),
        BatchResult("x", "ERR", "NO_JOB"),
        BatchResult("OK", "ERR", "NOT_FAILED"),
    ]
    with pytest.raises(InvalidArgument):
        admin.parse_batch("b", ["ERR", "BATCH_TOO_LARGE", "100"])


# -- codec ---------------------------------------------------------------------------------


def test_encode_payload():
    assert encode_payload({"a": [1, 2.5, None, True, "é"]}) == (
        '{"a":[1,2.5,null,true,"é"]}'.encode()
    )
    assert encode_payload((1, 2)) == b"[1,2]"
    assert encode_payload([]) == b"[]"
    for bad in ("s", 1, None, {"x": math.nan}, {"x": -math.inf}, {2: 1}, {"o": object()}):
        with pytest.raises(InvalidPayload):
            encode_payload(bad)
    with pytest.raises(InvalidPayload):
        encode_payload({"s": "x" * 10}, max_bytes=10)
    assert encode_payload({"s": "x"}, max_bytes=9) == b'{"s":"x"}'


def test_depth_limit():
    v: list = []
    for _ in range(MAX_DEPTH - 1):
        v = [v]
    encode_payload(v)  # MAX_DEPTH levels
    with pytest.raises(InvalidPayload):
        encode_payload([v])


def test_decode_payload():
    assert decode_payload('{"a":1}') == {"a": 1}
    assert decode_payload(b"[1]") == [1]
    assert decode_payload("not json") == "not json"
    assert decode_payload(b"\xffbad") == "\ufffdbad"


def test_encode_result():
    assert encode_result("done") == b'"done"'
    assert encode_result(3) == b"3"
    assert encode_result({"a": None}) == b'{"a":null}'
    with pytest.raises(InvalidPayload):
        encode_result(math.nan)
    with pytest.raises(InvalidPayload):
        encode_result("x" * 20, max_bytes=10)


def test_truncate_error():
    assert truncate_error("short") == "short"
    cut = truncate_error("é" * 3000)
    assert cut == "é" * 2048
    assert len(cut.encode()) == 4096
    cut = truncate_error("a" + "€" * 2000)
    assert len(cut.encode()) <= 4096
    assert cut == "a" + "€" * 1365
    assert truncate_error("x\ud800y") == "x?y"  # a lone surrogate cannot be sent as UTF-8
    assert truncate_error("abcdef", max_bytes=3) == "abc"


# -- scripts -------------------------------------------------------------------------------


def test_scripts_are_complete_lua_chunks():
    import hashlib

    for name, script in SCRIPTS.items():
        assert script.sha == hashlib.sha1(script.source.encode()).hexdigest()
        assert not script.source.startswith("#!"), name  # no shebang: compat mode (D3)
    for name in ("childs_init", "child_ack"):
        src = SCRIPTS[name].source
        # standalone scripts must define every helper they use
        for helper in ("int(", "fmt("):
            if helper in src.replace("local function " + helper, ""):
                assert "local function " + helper in src, (name, helper)


def test_new_job_id_is_the_ulid_that_ulid_py_would_make():
    ulid = pytest.importorskip("ulid")  # ulid-py: a dev dependency, the reference here
    for ms, rand in [
        (0, bytes(10)),
        (1_700_000_000_123, bytes(range(10))),
        (2**48 - 1, b"\xff" * 10),
        (1_234_567_890_123, bytes([0x80, 1, 2, 3, 4, 5, 6, 7, 8, 0x7F])),
    ]:
        ours = common.new_job_id(lambda ms=ms: ms * 1_000_000 + 999_999, lambda n, r=rand: r[:n])
        ref = ulid.from_bytes(ms.to_bytes(6, "big") + rand)
        assert ours == str(ref)
        assert ulid.from_str(ours).timestamp().int == ms
    before = int(time.time() * 1000)
    ids = [common.new_job_id() for _ in range(2000)]
    after = int(time.time() * 1000)
    assert len(set(ids)) == len(ids)
    for jid in ids:
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", jid)
        parsed = ulid.from_str(jid)
        assert str(parsed) == jid
        assert before <= parsed.timestamp().int <= after
    assert len({jid[10:] for jid in ids}) == len(ids)  # 80 random bits each


# --------------------------------------------------------------------------- monitor reads


def test_parse_scored_both_reply_shapes():
    from omniq._protocol import reads

    assert reads.parse_scored([b"a", b"5", b"b", b"7"]) == [("a", 5), ("b", 7)]
    assert reads.parse_scored([[b"a", 5.0], ["b", 7.0]]) == [("a", 5), ("b", 7)]
    assert reads.parse_scored([]) == []
    assert reads.parse_score(None) is None
    assert reads.parse_score(b"12") == 12


def test_merge_index_pages_orders_by_time_then_id_and_keeps_positions():
    from omniq._protocol import reads

    rows = [[("a", 1), ("d", 4)], [("b", 2), ("c", 3)], []]
    picked, cursor = reads.merge_index_pages(rows, [0, 0, 0], 2, False)
    assert picked == [(0, "a", 1), (1, "b", 2)]
    assert cursor == "1,1,0"
    assert reads.decode_cursor(cursor, 3) == [1, 1, 0]
    picked, cursor = reads.merge_index_pages([[("x", 5)], [("w", 5)]], [3, 0], 5, False)
    assert [p[1] for p in picked] == ["w", "x"]  # same time: by id
    assert cursor is None  # every partition returned less than a page and all was taken
    picked, cursor = reads.merge_index_pages([[("a", 1), ("b", 2)]], [0], 2, True)
    assert [p[1] for p in picked] == ["b", "a"]
    assert cursor == "2"  # a full page: there may be more


@pytest.mark.parametrize("cursor", ["", "1", "1,x", "-1,0", "1,2,3", 5])
def test_decode_cursor_refuses_foreign_cursors(cursor):
    from omniq._protocol import reads

    with pytest.raises(InvalidArgument):
        reads.decode_cursor(cursor, 2)


def test_lane_and_page_checks():
    from omniq._protocol import reads

    assert reads.check_index_lane("failed") == "failed"
    for bad in ("gwait", "x", None):
        with pytest.raises(InvalidArgument):
            reads.check_index_lane(bad)
    for bad in (0, 1001, True, 2.0):
        with pytest.raises(InvalidArgument):
            reads.check_page_limit(bad)
    st = reads.parse_group_state("g", [b"2", None, 3, b"17", None, None])
    assert (st.inflight, st.limit, st.ready, st.ready_ms, st.waiting) == (2, None, True, 17, 3)
    assert (st.held_by, st.blocked_by) == (None, None)
    st = reads.parse_group_state("g", [None, b"1", 1, None, b"A", "B"])
    assert (st.held_by, st.blocked_by, st.ready) == ("A", "B", False)


def test_pick_now():
    assert common.pick_now(0, 0) == 0
    assert common.pick_now(5, 0) == common.pick_now(0, 5) == common.pick_now(5, 5) == 5
    with pytest.raises(InvalidArgument):
        common.pick_now(5, 6)
    with pytest.raises(InvalidArgument):
        common.pick_now(0, -1)


def test_a_redis_connection_closed_while_in_use_is_a_connection_failure():
    """redis-py's asyncio connection can be closed by one task while another writes on it
    (seen after a cluster node restart): AttributeError on a None writer, raised inside
    redis-py. That is a broken connection; the same error raised elsewhere is not."""
    from omniq.aio._transport import map_error
    from omniq.errors import ConnectionFailed

    scope: dict[str, object] = {}
    exec(compile("def write():\n    None.writelines([])\n",
                 "/site-packages/redis/asyncio/connection.py", "exec"), scope)
    with pytest.raises(AttributeError) as inside:
        scope["write"]()  # type: ignore[operator]
    assert isinstance(map_error(inside.value), ConnectionFailed)
    with pytest.raises(AttributeError) as ours:
        None.writelines([])  # type: ignore[attr-defined]
    assert map_error(ours.value) is ours.value
