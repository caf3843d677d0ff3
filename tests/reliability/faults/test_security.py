"""Security: payloads are data only; TLS; ACL users.

* a payload that looks like a pickle or a Python/template expression comes back as the same
  plain string, to the worker's handler, ``get_job`` and ``result``; nothing is executed;
* the package never imports pickle/marshal/shelve nor calls eval/exec/compile/__import__
  (YAML only in settings.py, for settings files, and only through ``yaml.safe_load``),
  and its Lua scripts never load code (``load``/``loadstring``/``dofile``);
* TLS: a TLS-only server with a throwaway CA (made with the ``openssl`` CLI, or the
  ``cryptography`` package when there is no CLI) serves publish/reserve/ack and a worker
  over ``rediss://``; a client that does not trust the CA is refused;
* ACL: a user with a password works through ``username``/``password``; a wrong password and
  a user without the right to run scripts get :class:`PermissionDenied` with the server's
  text (NOPERM), and a worker run by that user stops with it instead of retrying forever.
"""

from __future__ import annotations

import ast
import os
import pickle
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

import omniq
from omniq import AsyncOmniq
from omniq.aio.worker import Worker
from omniq.errors import ConnectionFailed, PermissionDenied
from omniq.testing.embedded import ServerTLS

PACKAGE = Path(omniq.__file__).resolve().parent


# --------------------------------------------------------------------------- payloads


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def hostile_strings(marker: Path) -> dict[str, str]:
    return {
        "pickle": pickle.dumps(_Evil(marker), protocol=0).decode("latin-1"),
        "pickle_bin": pickle.dumps(_Evil(marker)).decode("latin-1"),
        "pickle_text": f"cos\nsystem\n(S'touch {marker}'\ntR.",
        "python": f"__import__('os').system('touch {marker}')",
        "lambda": f"(lambda: open('{marker}', 'w'))()",
        "template": "{{7*7}} ${7*7} #{7*7} %(x)s {0.__class__}",
        "lua": f"os.execute('touch {marker}')",
    }


async def test_hostile_payload_strings_come_back_as_plain_data(omniq, tmp_path):
    marker = tmp_path / "pwned"
    payload = {"s": hostile_strings(marker), "list": list(hostile_strings(marker).values())}
    seen: list[Any] = []

    async def handler(ctx: Any) -> Any:
        seen.append(ctx.payload)
        return ctx.payload["s"] if isinstance(ctx.payload, dict) else None  # the result

    typed_seen: list[Any] = []

    async def typed(ctx: Any, data: dict[str, Any]) -> None:
        typed_seen.append(data)

    jid = await omniq.publish("sec", payload)
    await Worker(omniq, "sec", handler, drain=True).run()
    assert seen == [payload]
    info = await omniq.get_job("sec", jid)
    assert info.state == "completed", info.last_error
    assert info.payload == payload
    assert await omniq.result("sec", jid) == payload["s"]

    jid2 = await omniq.publish("sec", [*payload["list"][:3], payload["s"]])
    await omniq.publish("sec2", payload)
    await Worker(omniq, "sec", handler, drain=True).run()
    await Worker(omniq, "sec2", typed, drain=True).run()
    assert seen[-1] == [*payload["list"][:3], payload["s"]]
    assert typed_seen == [payload]
    assert (await omniq.get_job("sec", jid2)).state == "completed"
    assert not marker.exists(), "a payload was executed"


def test_the_package_never_unpickles_or_evaluates():
    banned_modules = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill",
                      "cloudpickle", "jsonpickle", "yaml"}
    banned_calls = {"eval", "exec", "compile", "__import__"}
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                names = []
            # settings files (operator input, never payloads) may be YAML: only in
            # settings.py, and only through yaml.safe_load (checked below)
            allowed = {"yaml"} if path == PACKAGE / "settings.py" else set()
            problems += [f"{path}:{node.lineno} imports {n}" for n in names
                         if n in banned_modules - allowed]
            if (allowed and isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name) and node.value.id == "yaml"
                    and node.attr not in {"safe_load", "YAMLError"}):
                problems.append(f"{path}:{node.lineno} uses yaml.{node.attr}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in banned_calls):
                problems.append(f"{path}:{node.lineno} calls {node.func.id}()")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "literal_eval"):
                problems.append(f"{path}:{node.lineno} calls literal_eval()")
    lua_load = re.compile(r"(^|[^\w.:])(loadstring|load|dofile|loadfile)\s*\(")
    scripts = sorted(PACKAGE.rglob("*.lua"))
    assert scripts
    for path in scripts:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if lua_load.search(line.split("--", 1)[0]):
                problems.append(f"{path}:{n} loads code: {line.strip()}")
    assert problems == []


# --------------------------------------------------------------------------- TLS


def _openssl(tmp: Path) -> ServerTLS:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True,
                       timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=omniq test CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (tmp / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    return ServerTLS(str(tmp / "server.crt"), str(tmp / "server.key"), str(tmp / "ca.crt"))


def _cryptography(tmp: Path) -> ServerTLS:  # pragma: no cover - only without the openssl CLI
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem_key(key: Any, name: str) -> str:
        (tmp / name).write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return str(tmp / name)

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "omniq test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem_key(ca_key, "ca.key")
    return ServerTLS(str(tmp / "server.crt"), pem_key(key, "server.key"), str(tmp / "ca.crt"))


@pytest.fixture
def tls_files(tmp_path: Path) -> ServerTLS:
    tmp = tmp_path / "tls"
    tmp.mkdir()
    if shutil.which("openssl"):
        return _openssl(tmp)
    try:
        import cryptography  # noqa: F401
    except ImportError:
        pytest.skip("neither the openssl CLI nor the cryptography package is available "
                    "to make a throwaway CA")
    return _cryptography(tmp)  # pragma: no cover


async def test_tls_server_serves_publish_reserve_ack_and_a_worker(
    omniq_server_factory, tls_files
):
    try:
        server = omniq_server_factory(tls=tls_files)
    except Exception as exc:  # a server binary built without TLS
        if "tls" in str(exc).lower():
            pytest.skip(f"the server binary does not support TLS: {exc}")
        raise
    assert server.url.startswith("rediss://")
    async with AsyncOmniq(url=server.url, ssl_ca_certs=tls_files.ca_cert_file) as client:
        jid = await client.publish("tls", {"x": 1})
        job = await client.reserve("tls")
        assert job is not None
        assert job.job_id == jid
        assert job.payload == {"x": 1}
        await client.ack_success("tls", jid, job.lease_token, result={"ok": True})
        assert await client.result("tls", jid) == {"ok": True}

        done: list[str] = []

        async def handler(ctx: Any) -> None:
            done.append(ctx.job_id)

        ids = [await client.publish("tls", {"i": i}) for i in range(5)]
        await Worker(client, "tls", handler, drain=True).run()
        assert done == ids

    # host/port form with ssl=True verifies the certificate as well
    async with AsyncOmniq(host="127.0.0.1", port=server.port, ssl=True,
                          ssl_ca_certs=tls_files.ca_cert_file) as client:
        assert await client.ping()
    # a client that does not trust the CA is refused, as is plain TCP on the TLS port
    async with AsyncOmniq(url=server.url) as untrusting:
        with pytest.raises(ConnectionFailed, match=r"(?i)certificate"):
            await untrusting.publish("tls", {"x": 2})
    async with AsyncOmniq(url=f"redis://127.0.0.1:{server.port}/0",
                          socket_timeout=2) as plain:
        with pytest.raises(ConnectionFailed):
            await plain.publish("tls", {"x": 3})
    assert (await _stats(server, tls_files)).waiting_total == 0


async def _stats(server: Any, tls: ServerTLS) -> Any:
    async with AsyncOmniq(url=server.url, ssl_ca_certs=tls.ca_cert_file) as c:
        return await c.stats("tls")


# --------------------------------------------------------------------------- ACL


@pytest.fixture
def acl_server(omniq_server_factory):
    server = omniq_server_factory()
    with redis.Redis.from_url(server.url) as admin:
        admin.acl_setuser("alice", enabled=True, passwords=["+s3cret-alice"],
                          keys=["*"], channels=["*"], commands=["+@all"])
        admin.acl_setuser("noscripts", enabled=True, passwords=["+s3cret-bob"],
                          keys=["*"], channels=["*"], commands=["+@all", "-@scripting"])
        admin.acl_setuser("otherkeys", enabled=True, passwords=["+s3cret-eve"],
                          keys=["other:*"], channels=["*"], commands=["+@all"])
        admin.acl_setuser("evalonly", enabled=True, passwords=["+s3cret-dan"],
                          keys=["*"], channels=["*"],
                          commands=["+@all", "-fcall", "-fcall_ro", "-function"])
    return server


def _script_calls(server: Any) -> tuple[int, int]:
    with redis.Redis.from_url(server.url) as admin:
        stats = admin.info("commandstats")
    return (int(stats.get("cmdstat_fcall", {}).get("calls", 0)),
            int(stats.get("cmdstat_evalsha", {}).get("calls", 0)))


async def test_scripts_run_as_functions_and_fall_back_to_evalsha_without_fcall(acl_server):
    # a user with every right calls the queue scripts as Redis Functions
    async with AsyncOmniq(url=acl_server.url, username="alice",
                          password="s3cret-alice") as client:
        await client.publish("fn-all", {"x": 1})
    fcalls, evalshas = _script_calls(acl_server)
    assert fcalls >= 1
    assert evalshas == 0
    # one whose ACL refuses FCALL and FUNCTION gets the same service by EVALSHA: the
    # refused calls ran nothing, so every job is published and handled exactly once
    async with AsyncOmniq(url=acl_server.url, username="evalonly",
                          password="s3cret-dan") as client:
        ids = [await client.publish("fn", {"x": i}) for i in range(3)]
        ids += await client.publish_many("fn", [{"x": i} for i in range(3, 6)])
        seen: list[str] = []

        async def handler(ctx: Any) -> None:
            seen.append(ctx.job_id)

        await Worker(client, "fn", handler, drain=True).run()
        assert len(ids) == 6
        assert sorted(seen) == sorted(ids)
    after = _script_calls(acl_server)
    assert after[0] == fcalls  # (a refused command is not counted as a call)
    assert after[1] >= 3  # three publishes, the batch, the worker's reservations
    with redis.Redis.from_url(acl_server.url) as admin:
        assert admin.info("commandstats")["cmdstat_fcall"]["rejected_calls"] == 1


async def test_acl_user_with_password_works(acl_server):
    async with AsyncOmniq(url=acl_server.url, username="alice",
                          password="s3cret-alice") as client:
        jid = await client.publish("acl", {"x": 1})
        job = await client.reserve("acl")
        assert job is not None
        assert job.job_id == jid
        await client.ack_success("acl", jid, job.lease_token)
        assert (await client.get_job("acl", jid)).state == "completed"
    # the same through host/port
    async with AsyncOmniq(host="127.0.0.1", port=acl_server.port, username="alice",
                          password="s3cret-alice") as client:
        assert (await client.stats("acl")).completed_kept == 1


async def test_wrong_password_is_permission_denied(acl_server):
    async with AsyncOmniq(url=acl_server.url, username="alice", password="nope") as client:
        with pytest.raises(PermissionDenied, match=r"(?i)invalid username-password|WRONGPASS"):
            await client.publish("acl", {"x": 1})


async def test_user_without_script_rights_gets_a_clear_noperm(acl_server):
    async with AsyncOmniq(url=acl_server.url, username="noscripts",
                          password="s3cret-bob") as client:
        with pytest.raises(PermissionDenied, match=r"NOPERM.*evalsha") as err:
            await client.publish("acl", {"x": 1})
        assert not isinstance(err.value, ConnectionFailed)
        with pytest.raises(PermissionDenied, match="NOPERM"):
            await client.reserve("acl")

        async def handler(ctx: Any) -> None:  # pragma: no cover - never runs
            raise AssertionError("no job can be reserved")

        # a worker of that user stops with the error instead of retrying forever
        with pytest.raises(PermissionDenied, match="NOPERM"):
            await Worker(client, "acl", handler).run()


async def test_user_without_access_to_the_queue_keys_gets_noperm(acl_server):
    async with AsyncOmniq(url=acl_server.url, username="otherkeys",
                          password="s3cret-eve") as client:
        with pytest.raises(PermissionDenied, match="NOPERM"):
            await client.publish("acl", {"x": 1})
        with pytest.raises(PermissionDenied, match="NOPERM"):
            await client.stats("acl")
