"""The documented official OmniQ Python API (seeds 000 and 001), run as written.

Each snippet below is copied verbatim from the official README; only the server address
(``host="omniq-redis", port=6379`` / ``localhost``) and placeholder job ids (``"01A..."``)
are substituted at run time. ``print`` is captured through the snippet's globals; the
snippets' ``time.sleep(2)`` (simulated work) is shortened.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest
import redis

from omniq import OmniqClient

# --------------------------------------------------------------------------- seed 000

S000_PUBLISH = '''
from omniq.client import OmniqClient

omniq = OmniqClient(host="omniq-redis", port=6379)

job_id = omniq.publish(
    queue="demo",
    payload={"hello": "world"},
    timeout_ms=30_000
)

print("Published:", job_id)
'''

S000_CONSUMER = '''
import time
from omniq.client import OmniqClient

def handler(ctx):
    print("Processing:", ctx.job_id)
    time.sleep(2)
    print("Done")

omniq = OmniqClient(host="omniq-redis", port=6379)

omniq.consume(
    queue="demo",
    handler=handler,
    verbose=True
)
'''

S000_STRUCTURED = '''
from dataclasses import dataclass
from typing import Optional, List
from omniq.client import OmniqClient

@dataclass
class OrderCreated:
    order_id: str
    amount: int
    currency: str
    tags: Optional[List[str]] = None

omniq = OmniqClient(host="omniq-redis", port=6379)

job_id = omniq.publish_json(
    queue="orders",
    payload=OrderCreated(
        order_id="ORD-1",
        amount=1000,
        currency="USD",
        tags=["priority"]
    ),
    max_attempts=5,
    timeout_ms=60_000
)
'''

S000_CONSUMPTION = '''
omniq.consume(
    queue="demo",
    handler=handler,
    verbose=True,
    drain=False
)
'''

S000_DRAIN = '''
omniq.consume(
    queue="demo",
    handler=handler,
    drain=True
)
'''

S000_HEARTBEAT = '''
ctx.exec.heartbeat()
'''

S000_GROUPED = '''
omniq.publish(
    queue="payments",
    payload={"invoice": 1},
    gid="company:acme",
    group_limit=1
)
'''

S000_RETRY = '''
omniq.retry_failed(
    queue="demo",
    job_id="01ABC..."
)
'''

S000_RETRY_BATCH = '''
results = omniq.retry_failed_batch(
    queue="demo",
    job_ids=["01A...", "01B..."]
)
'''

S000_REMOVE_BATCH = '''
omniq.remove_jobs_batch(
    queue="demo",
    lane="failed",
    job_ids=["01A...", "01B..."]
)
'''

S000_PAUSE = '''
omniq.pause(queue="demo")
omniq.resume(queue="demo")
omniq.is_paused(queue="demo")
'''

S000_CHILD_ACK = '''
remaining = ctx.exec.child_ack(completion_key)

if remaining == 0:
    print("Last child completed")
'''

# --------------------------------------------------------------------------- seed 001

S001_PUBLISH = '''
from omniq.client import OmniqClient

uq = OmniqClient(
    host="omniq-redis",
    port=6379,
)

job_id = uq.publish(
    queue="demo",
    payload={"hello": "world"},
    timeout_ms=30_000,
)

print("OK", job_id)
'''

S001_CONSUME = '''
import time
from omniq.client import OmniqClient

def handler(ctx):
    print("Waiting 2 seconds")
    time.sleep(2)
    print("Done")

uq = OmniqClient(host="omniq-redis", port=6379)

uq.consume(
    queue="demo",
    handler=handler,
    verbose=True,
    drain=False,
)
'''

S001_INIT_A = '''
# Option A: host/port
uq = OmniqClient(host="localhost", port=6379, db=0)
'''

S001_INIT_B = '''
# Option B: Redis URL
uq = OmniqClient(redis_url="redis://:password@localhost:6379/0")
'''

S001_RETRY = '''
uq.retry_failed(queue="demo", job_id="01ABC...")
'''

S001_RETRY_BATCH = '''
results = uq.retry_failed_batch(
    queue="demo",
    job_ids=["01A...", "01B...", "01C..."]
)

for job_id, status, reason in results:
    print(job_id, status, reason)
'''

S001_REMOVE = '''
uq.remove_job(
    queue="demo",
    job_id="01ABC...",
    lane="failed",  # wait | delayed | failed | completed | gwait
)
'''

S001_REMOVE_BATCH = '''
results = uq.remove_jobs_batch(
    queue="demo",
    lane="failed",
    job_ids=["01A...", "01B...", "01C..."]
)
'''

S001_PARENT = '''
def parent_handler(ctx):
    document_id = ctx.payload["document_id"]
    pages = ctx.payload["pages"]

    key = f"document:{document_id}"

    ctx.check_completion.init_job_counter(key, pages)

    for p in range(1, pages + 1):
        uq.publish(
            queue="pages",
            payload={
                "document_id": document_id,
                "page": p,
                "completion_key": key,
            },
        )
'''

S001_CHILD = '''
def page_handler(ctx):
    key = ctx.payload["completion_key"]

    remaining = ctx.check_completion.job_decrement(key)

    if remaining == 0:
        print("Last page finished.")
'''

S001_GROUPED = '''
uq.publish(queue="demo", payload={"i": 1}, gid="company:acme", group_limit=2)
uq.publish(queue="demo", payload={"i": 2}, gid="company:acme")
'''


# --------------------------------------------------------------------------- helpers


class Printed:
    """A ``print`` replacement that records lines and can react to one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._hooks: list[tuple[str, Any]] = []

    def on(self, line: str, action: Any) -> None:
        self._hooks.append((line, action))

    def __call__(self, *args: object) -> None:
        line = " ".join(str(a) for a in args)
        with self._lock:
            self.lines.append(line)
        for text, action in self._hooks:
            if line == text:
                action()


class Seeds:
    """Runs snippets in one namespace, against the test server."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.host, self.port = addr
        self.printed = Printed()
        self.ns: dict[str, Any] = {"print": self.printed, "__name__": "seed"}
        self.ids: dict[str, str] = {}
        self._clients: list[OmniqClient] = []

    def run(self, code: str, **names: Any) -> dict[str, Any]:
        address = f'host="{self.host}", port={self.port}'
        code = code.replace('host="omniq-redis", port=6379', address)
        code = code.replace('host="localhost", port=6379', address)
        code = code.replace('host="omniq-redis",\n    port=6379,', address + ",")
        for placeholder, job_id in self.ids.items():
            code = code.replace(f'"{placeholder}"', f'"{job_id}"')
        self.ns.update(names)
        try:
            exec(compile(code, "<seed>", "exec", dont_inherit=True), self.ns)
        finally:
            for value in list(self.ns.values()):
                if isinstance(value, OmniqClient) and value not in self._clients:
                    self._clients.append(value)
        return self.ns

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def seeds(server_addr: tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> Any:
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: real_sleep(min(s, 0.02)))
    s = Seeds(server_addr)
    try:
        yield s
    finally:
        s.close()


def make_failed(client: OmniqClient, queue: str, n: int) -> list[str]:
    """Publish ``n`` jobs and fail each for good."""
    ids = [client.publish(queue, {"n": i}, max_attempts=1) for i in range(n)]
    for _ in ids:
        job = client.reserve(queue)
        assert job is not None
        assert client.ack_fail(queue, job.job_id, job.lease_token, "boom").status == "FAILED"
    return ids


def stop_with(sig: int) -> Any:
    """An action that sends ``sig`` to this process (its main thread runs the consumer)."""
    return lambda: signal.pthread_kill(threading.main_thread().ident or 0, sig)


# --------------------------------------------------------------------------- seed 000


def test_000_publish(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    ns = seeds.run(S000_PUBLISH)
    job_id = ns["job_id"]
    assert seeds.printed.lines == [f"Published: {job_id}"]
    job = omniq_sync.get_job("demo", job_id)
    assert job is not None
    assert (job.state, job.payload, job.timeout_ms) == ("wait", {"hello": "world"}, 30_000)


def test_000_consumer_until_ctrl_c(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    """consumer.py runs forever (drain=False); Ctrl-C after the job stops it gracefully."""
    assert threading.current_thread() is threading.main_thread()
    job_id = omniq_sync.publish("demo", {"hello": "world"})
    seeds.printed.on("Done", stop_with(signal.SIGINT))
    seeds.run(S000_CONSUMER)
    assert seeds.printed.lines == [f"Processing: {job_id}", "Done"]
    job = omniq_sync.get_job("demo", job_id)
    assert job is not None
    assert job.state == "completed"


def test_000_structured_payload(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    ns = seeds.run(S000_STRUCTURED)
    job = omniq_sync.get_job("orders", ns["job_id"])
    assert job is not None
    assert job.payload == {
        "order_id": "ORD-1", "amount": 1000, "currency": "USD", "tags": ["priority"],
    }
    assert (job.max_attempts, job.timeout_ms) == (5, 60_000)


def test_000_consumption_until_sigterm(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    """The "Consumption" snippet (verbose, drain=False); SIGTERM stops it gracefully."""
    before = signal.getsignal(signal.SIGTERM)
    job_id = omniq_sync.publish("demo", {"x": 1})

    def handler(ctx: Any) -> None:
        seeds.printed("handled", ctx.job_id)

    seeds.printed.on(f"handled {job_id}", stop_with(signal.SIGTERM))
    seeds.run(S000_PUBLISH)  # defines `omniq` (and publishes one more job)
    seeds.run(S000_CONSUMPTION, handler=handler)
    handled = [line for line in seeds.printed.lines if line.startswith("handled")]
    assert handled[0] == f"handled {job_id}"
    assert signal.getsignal(signal.SIGTERM) == before
    job = omniq_sync.get_job("demo", job_id)
    assert job is not None
    assert job.state == "completed"


def test_000_drain_mode(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    ids = [omniq_sync.publish("demo", {"i": i}) for i in range(5)]
    seen: list[str] = []
    seeds.run(S000_PUBLISH)
    ids.append(seeds.ns["job_id"])
    seeds.run(S000_DRAIN, handler=lambda ctx: seen.append(ctx.job_id))
    assert seen == ids
    assert omniq_sync.stats("demo").waiting_total == 0


def test_000_heartbeat_and_context_fields(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    job_id = omniq_sync.publish("demo", {"k": "v"}, gid="tenant-1", timeout_ms=5_000)
    seen: dict[str, dict[str, Any]] = {}

    def handler(ctx: Any) -> None:
        before = ctx.lock_until_ms
        exec(S000_HEARTBEAT, {"ctx": ctx})
        seen[ctx.job_id] = dict(
            queue=ctx.queue, job_id=ctx.job_id, payload=ctx.payload,
            payload_raw=ctx.payload_raw, attempt=ctx.attempt, lease_token=ctx.lease_token,
            gid=ctx.gid, has_exec=ctx.exec is not None, renewed=ctx.lock_until_ms >= before,
            lock_until_ms=ctx.lock_until_ms,
        )

    seeds.run(S000_PUBLISH)
    seeds.run(S000_DRAIN, handler=handler)
    assert set(seen) == {job_id, seeds.ns["job_id"]}
    fields = seen[job_id]
    assert fields["queue"] == "demo"
    assert fields["payload"] == {"k": "v"}
    assert fields["payload_raw"] == '{"k":"v"}'
    assert fields["attempt"] == 1
    assert fields["gid"] == "tenant-1"
    assert fields["lease_token"]
    assert fields["has_exec"]
    assert fields["renewed"]
    assert fields["lock_until_ms"] > time.time() * 1000
    assert seen[seeds.ns["job_id"]]["gid"] in (None, "")


def test_000_grouped(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    seeds.run(S000_PUBLISH)
    seeds.run(S000_GROUPED)
    seeds.run(S000_GROUPED)
    first = omniq_sync.reserve("payments")
    assert first is not None
    assert first.gid == "company:acme"
    assert omniq_sync.reserve("payments") is None  # group_limit=1: the second one waits
    omniq_sync.ack_success("payments", first.job_id, first.lease_token)
    second = omniq_sync.reserve("payments")
    assert second is not None
    assert second.job_id != first.job_id


def test_000_retry_and_batch_retry(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    a, b, c = make_failed(omniq_sync, "demo", 3)
    seeds.ids = {"01ABC...": a, "01A...": b, "01B...": c}
    seeds.run(S000_PUBLISH)
    seeds.run(S000_RETRY)
    ns = seeds.run(S000_RETRY_BATCH)
    assert [(r.job_id, r.status) for r in ns["results"]] == [(b, "OK"), (c, "OK")]
    for job_id in (a, b, c):
        job = omniq_sync.get_job("demo", job_id)
        assert job is not None
        assert (job.state, job.attempt) == ("wait", 0)


def test_000_remove_batch(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    a, b = make_failed(omniq_sync, "demo", 2)
    seeds.ids = {"01A...": a, "01B...": b}
    seeds.run(S000_PUBLISH)
    seeds.run(S000_REMOVE_BATCH)
    assert omniq_sync.get_job("demo", a) is None
    assert omniq_sync.get_job("demo", b) is None
    assert omniq_sync.stats("demo").failed == 0


def test_000_pause_resume(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    seeds.run(S000_PUBLISH)
    omniq = seeds.ns["omniq"]
    omniq.pause(queue="demo")
    assert omniq.is_paused(queue="demo") is True
    assert omniq_sync.reserve("demo") is None  # paused: no new reservations
    seeds.run(S000_PAUSE)
    assert omniq.is_paused(queue="demo") is False
    assert omniq_sync.reserve("demo") is not None


def test_000_child_ack(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    omniq_sync.childs_init("doc-7", 3)
    for page in range(3):
        omniq_sync.publish("pages", {"page": page, "completion_key": "doc-7"})
    remaining: list[int] = []

    def handler(ctx: Any) -> None:
        ns = {"ctx": ctx, "completion_key": ctx.payload["completion_key"], "print": seeds.printed}
        exec(S000_CHILD_ACK, ns)
        remaining.append(ns["remaining"])

    seeds.run(S000_PUBLISH)
    omniq = seeds.ns["omniq"]
    omniq.consume(queue="pages", handler=handler, drain=True)
    assert remaining == [2, 1, 0]
    assert seeds.printed.lines[-1] == "Last child completed"


# --------------------------------------------------------------------------- seed 001


def test_001_publish(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    ns = seeds.run(S001_PUBLISH)
    assert seeds.printed.lines == [f"OK {ns['job_id']}"]
    assert omniq_sync.stats("demo").waiting == 1


def test_001_consume_until_sigterm(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    job_id = omniq_sync.publish("demo", {"hello": "world"})
    seeds.printed.on("Done", stop_with(signal.SIGTERM))
    seeds.run(S001_CONSUME)
    assert seeds.printed.lines == ["Waiting 2 seconds", "Done"]
    job = omniq_sync.get_job("demo", job_id)
    assert job is not None
    assert job.state == "completed"


def test_001_client_initialization(
    seeds: Seeds, omniq_sync: OmniqClient, omniq_server_factory: Any
) -> None:
    ns = seeds.run("from omniq.client import OmniqClient\n" + S001_INIT_A)
    assert ns["uq"].ping() is True
    ns["uq"].publish(queue="demo", payload={"via": "A"})
    assert omniq_sync.stats("demo").waiting == 1

    server = omniq_server_factory()  # a private server with the seed's password
    with redis.Redis(host=server.host, port=server.port) as admin:
        admin.config_set("requirepass", "password")
    code = S001_INIT_B.replace("@localhost:6379/", f"@127.0.0.1:{server.port}/")
    ns = seeds.run(code)
    assert ns["uq"].ping() is True
    assert ns["uq"].publish(queue="demo", payload={"via": "B"})


def test_001_admin_retry_and_remove(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    a, b, c, d, e = make_failed(omniq_sync, "demo", 5)
    seeds.run(S001_PUBLISH)
    seeds.ids = {"01ABC...": a}
    seeds.run(S001_RETRY)
    seeds.ids = {"01A...": a, "01B...": b, "01C...": c}
    ns = seeds.run(S001_RETRY_BATCH)
    assert [tuple(r) for r in ns["results"]][1:] == [(b, "OK", None), (c, "OK", None)]
    assert ns["results"][0][:2] == (a, "ERR")  # already retried: not failed any more
    assert seeds.printed.lines[-2:] == [f"{b} OK None", f"{c} OK None"]

    seeds.ids = {"01ABC...": d}
    seeds.run(S001_REMOVE)
    assert omniq_sync.get_job("demo", d) is None

    seeds.ids = {"01A...": e, "01B...": a, "01C...": "no-such-job"}
    ns = seeds.run(S001_REMOVE_BATCH)
    assert [r.status for r in ns["results"]] == ["OK", "ERR", "ERR"]
    assert omniq_sync.get_job("demo", e) is None
    assert omniq_sync.get_job("demo", a) is not None  # in wait, not failed: refused


def test_001_parent_child(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    seeds.run(S001_PUBLISH)  # defines `uq`, the client the parent handler publishes with
    seeds.run(S001_PARENT)
    seeds.run(S001_CHILD)
    uq = seeds.ns["uq"]
    uq.publish(queue="documents", payload={"document_id": "D1", "pages": 4})
    uq.consume(queue="documents", handler=seeds.ns["parent_handler"], drain=True)
    assert omniq_sync.stats("pages").waiting == 4
    uq.consume(queue="pages", handler=seeds.ns["page_handler"], drain=True, concurrency=2)
    assert seeds.printed.lines.count("Last page finished.") == 1
    assert omniq_sync.stats("pages").waiting_total == 0


def test_001_grouped(seeds: Seeds, omniq_sync: OmniqClient) -> None:
    seeds.run(S001_PUBLISH)
    omniq_sync.reserve("demo")  # the ungrouped job from the publish snippet
    seeds.run(S001_GROUPED)
    res = omniq_sync.reserve_many("demo", 10)
    assert [j.payload for j in res.jobs] == [{"i": 1}, {"i": 2}]  # FIFO, limit 2
    assert {j.gid for j in res.jobs} == {"company:acme"}

