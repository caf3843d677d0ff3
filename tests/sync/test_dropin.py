"""The official SDK's names and parameters behave as documented (docs/sync.md): the
``now_ms_override`` alias, ``consume(logger=..., poll_interval_s=...)``, ``omniq.consume``,
``QueueMonitor`` on plain and partitioned queues, lane paging with ``jobs``, job ids'
creation times (``omniq.ids``)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
import ulid

import omniq
from omniq import InvalidArgument, OmniqClient
from omniq.ids import id_time_ms, new_ulid
from omniq.monitor import QueueMonitor
from omniq.monitor_models import JobInfo, LaneJob, QueueOverview, QueueStats

T0 = 1_700_000_000_000


def test_official_import_paths() -> None:
    import omniq.client
    import omniq.consumer
    import omniq.exec
    import omniq.types

    assert omniq.QueueMonitor is QueueMonitor
    assert omniq.consume is omniq.consumer.consume
    assert omniq.JobCtx is omniq.types.JobCtx is omniq.JobContext
    assert omniq.types.ReserveJob is omniq.ReservedJob
    assert omniq.types.BatchResultItem is omniq.BatchResult
    assert omniq.exec.Exec.__name__ == "SyncExec"
    assert omniq.client.OmniqClient.queue_base(queue_name="q") == "{q}"


# --------------------------------------------------------------------------- now_ms_override


def test_now_ms_override_is_now_ms(omniq_sync: OmniqClient) -> None:
    a = omniq_sync.publish(queue="t", payload={"n": 1}, now_ms_override=T0)
    b = omniq_sync.publish(queue="t", payload={"n": 2}, now_ms=T0, now_ms_override=T0)
    c = omniq_sync.publish_json(queue="t", payload={"n": 3}, now_ms_override=T0)
    for jid in (a, b, c):
        info = omniq_sync.get_job("t", jid)
        assert info is not None
        assert info.created_ms == T0
    job = omniq_sync.reserve(queue="t", now_ms_override=T0 + 5)
    assert job is not None
    assert job.status == "JOB"
    assert omniq_sync.heartbeat(queue="t", job_id=job.job_id, lease_token=job.lease_token,
                                now_ms_override=T0 + 10) == T0 + 10 + job.timeout_ms
    omniq_sync.ack_success(queue="t", job_id=job.job_id, lease_token=job.lease_token,
                           now_ms_override=T0 + 20)
    done = omniq_sync.get_job("t", job.job_id)
    assert done is not None
    assert done.completed_ms == T0 + 20


def test_now_ms_and_override_must_agree(omniq_sync: OmniqClient) -> None:
    with pytest.raises(InvalidArgument, match="now_ms_override"):
        omniq_sync.publish(queue="t", payload={}, now_ms=T0, now_ms_override=T0 + 1)
    with pytest.raises(InvalidArgument):
        omniq_sync.reserve(queue="t", now_ms=T0, now_ms_override=T0 + 1)
    with pytest.raises(InvalidArgument):
        omniq_sync.publish(queue="t", payload={}, now_ms_override=-1)
    assert omniq_sync.stats("t").waiting == 0


# --------------------------------------------------------------------------- consume


def test_consume_logger_gets_the_verbose_lines(omniq_sync: OmniqClient) -> None:
    lines: list[str] = []
    jid = omniq_sync.publish(queue="log", payload={"n": 1})
    omniq_sync.consume(queue="log", handler=lambda ctx: None, verbose=True, drain=True,
                       logger=lines.append, poll_interval_s=0.05, promote_interval_s=1.0,
                       reap_interval_s=0.5, promote_batch=1000, reap_batch=1000,
                       heartbeat_interval_s=5.0, handle_signals=False)
    assert any(jid in ln and "reserved" in ln for ln in lines), lines
    assert any(jid in ln and "completed" in ln for ln in lines), lines
    before = len(lines)
    omniq_sync.publish(queue="log", payload={"n": 2})
    omniq_sync.consume(queue="log", handler=lambda ctx: None, drain=True, handle_signals=False)
    assert len(lines) == before  # the sink is for that run only


def test_official_consume_parameters_map_onto_the_worker(omniq_sync: OmniqClient) -> None:
    omniq_sync.publish(queue="map", payload={"n": 1})
    w = omniq_sync.consume(queue="map", handler=lambda ctx: None, drain=True,
                           poll_interval_s=0.1, promote_interval_s=2.0, reap_interval_s=0.5,
                           handle_signals=False)
    assert (w.poll_max_s, w.maintenance_interval_s) == (0.1, 0.5)
    assert w.stats.completed == 1
    with pytest.raises(InvalidArgument, match="given twice"):
        omniq_sync.consume(queue="map", handler=lambda ctx: None, drain=True,
                           poll_interval_s=0.1, poll_max_s=0.2)
    with pytest.raises(InvalidArgument):
        omniq_sync.consume(queue="map", handler=lambda ctx: None, reap_batch=0)
    with pytest.raises(InvalidArgument):
        omniq_sync.consume(queue="map", handler=lambda ctx: None, logger="stdout")


def test_module_consume_is_the_official_function(omniq_sync: OmniqClient) -> None:
    seen: list[Any] = []
    omniq_sync.publish(queue="fn", payload={"n": 7})
    w = omniq.consume(omniq_sync, queue="fn", handler=lambda ctx: seen.append(ctx.payload),
                      drain=True, stop_on_ctrl_c=False)
    assert seen == [{"n": 7}]
    assert w.stats.completed == 1
    assert not omniq_sync.closed


def test_client_from_a_blocking_redis_client(omniq_redis_url: str) -> None:
    from omniq.aio._connect import is_cluster_url, plain_url

    if is_cluster_url(omniq_redis_url):
        r: Any = redis.RedisCluster.from_url(plain_url(omniq_redis_url))
    else:
        r = redis.Redis.from_url(omniq_redis_url)
    try:
        with OmniqClient(redis=r, scripts_dir=None) as uq:
            jid = uq.publish(queue="r", payload={"n": 1})
            assert uq.get_job("r", jid) is not None
        assert r.ping()  # the caller's client is left alone
    finally:
        r.close()


# --------------------------------------------------------------------------- monitor


def _fill(uq: OmniqClient, queue: str) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {"wait": [], "delayed": [], "failed": [], "completed": []}
    for i in range(7):
        ids["wait"].append(uq.publish(queue=queue, payload={"n": i}, gid=f"g{i % 3}",
                                      now_ms_override=T0 + i))
    for i in range(3):
        ids["wait"].append(uq.publish(queue=queue, payload={"u": i}, now_ms_override=T0 + 10 + i))
    ids["delayed"].append(uq.publish(queue=queue, payload={"d": 1}, delay_ms=3_600_000))
    return ids


def test_queue_monitor_reports_what_the_client_sees(omniq_sync: OmniqClient) -> None:
    ids = _fill(omniq_sync, "mon")
    job = omniq_sync.reserve(queue="mon")
    assert job is not None
    mon = QueueMonitor(omniq_sync)
    assert "mon" in mon.scan_queues()
    st = mon.stats("mon")
    assert isinstance(st, QueueStats)
    assert st.active == 1
    assert st.delayed == 1
    assert st.waiting_total == 9
    assert mon.stats_many(["mon"]) == [st]
    assert st.last_finish_ms == 0  # None becomes the official 0

    rows = mon.lane_page("mon", "wait", limit=25)
    assert all(isinstance(r, LaneJob) and r.lane == "wait" for r in rows)
    expect = [j for j in ids["wait"] if j != job.job_id]
    assert sorted(r.job_id for r in rows) == sorted(expect)
    assert [r.idx_score_ms for r in rows] == sorted(r.idx_score_ms for r in rows)
    paged = mon.lane_page("mon", "wait", offset=0, limit=4) + \
        mon.lane_page("mon", "wait", offset=4, limit=4) + \
        mon.lane_page("mon", "wait", offset=8, limit=4)
    assert [r.job_id for r in paged] == [r.job_id for r in rows]
    rev = mon.lane_page("mon", "wait", reverse=True)
    assert [r.job_id for r in rev] == [r.job_id for r in rows][::-1]
    assert [r.job_id for r in mon.lane_page("mon", "active")] == [job.job_id]

    info = mon.get_job("mon", ids["delayed"][0])
    assert isinstance(info, JobInfo)
    assert info.state == "delayed"
    assert info.payload == '{"d":1}'
    assert info.lease_token == ""
    assert mon.get_job("mon", "nope") is None
    assert mon.get_job("mon", "") is None
    found = mon.find_jobs("mon", "delayed", [ids["delayed"][0], ids["wait"][0], "nope"])
    assert [f.job_id for f in found] == [ids["delayed"][0]]

    ready = mon.groups_ready_with_scores("mon")
    assert {g.gid for g in ready} == set(mon.groups_ready("mon")) <= {"g0", "g1", "g2"}
    status = {s.gid: s for s in mon.group_status("mon", ["g0", "g1", "g2", "none", ""])}
    assert sum(s.waiting_count for s in status.values()) + (1 if job.gid else 0) == 7
    assert status["none"].limit == 1
    assert status["none"].waiting_count == 0
    if job.gid:
        assert status[job.gid].inflight == 1
    ov = mon.overview("mon", samples_per_lane=5)
    assert isinstance(ov, QueueOverview)
    assert ov.stats == mon.stats("mon")
    assert [r.job_id for r in ov.active] == [job.job_id]


def test_jobs_pages_a_partitioned_queue_in_time_order(omniq_sync: OmniqClient) -> None:
    omniq_sync.partition_queue("pq", 3)
    ids = [omniq_sync.publish(queue="pq", payload={"n": i}, now_ms_override=T0 + i)
           for i in range(20)]
    seen: list[str] = []
    cursor = None
    while True:
        page = omniq_sync.jobs("pq", "wait", limit=6, cursor=cursor)
        seen += [j.job_id for j in page.jobs]
        assert page.index_ms == sorted(page.index_ms)
        assert all(j.queue.startswith("pq.p") for j in page.jobs)
        cursor = page.cursor
        if cursor is None:
            break
        assert cursor.count(",") == 2  # one offset per partition
    assert seen == ids  # published 1 ms apart: time order is publish order
    back = omniq_sync.jobs("pq", "wait", limit=20, reverse=True)
    assert [j.job_id for j in back.jobs] == ids[::-1]
    assert back.cursor is None
    with pytest.raises(InvalidArgument):
        omniq_sync.jobs("pq", "wait", cursor="3")
    with pytest.raises(InvalidArgument):
        omniq_sync.jobs("pq", "gwait")
    mon = QueueMonitor(omniq_sync)
    assert [r.job_id for r in mon.lane_page("pq", "wait", offset=5, limit=5)] == ids[5:10]
    assert omniq_sync.index_times("pq", "wait", [ids[3], "nope"]) == [T0 + 3, None]


# --------------------------------------------------------------------------- ids


def test_id_time_ms_reads_ulids_only(omniq_sync: OmniqClient) -> None:
    before = int(time.time() * 1000)
    jid = omniq_sync.publish(queue="ids", payload={})
    after = int(time.time() * 1000)
    got = id_time_ms(jid)
    assert got is not None
    assert before <= got <= after
    info = omniq_sync.get_job("ids", jid)
    assert info is not None
    assert info.id_time_ms == got
    custom = omniq_sync.publish(queue="ids", payload={}, job_id="order-42")
    info = omniq_sync.get_job("ids", custom)
    assert info is not None
    assert info.id_time_ms is None
    assert id_time_ms(str(ulid.from_timestamp(1_600_000_000.123))) == 1_600_000_000_123
    assert id_time_ms(new_ulid().lower()) is not None
    for bad in ("", "x" * 26, "8" + "0" * 25, "0" * 25, "I" * 26, 42):
        assert id_time_ms(bad) is None  # type: ignore[arg-type]
