"""Settings from every source, their precedence, error messages, and the from_settings
constructors on the real test server."""

from __future__ import annotations

import builtins
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

from omniq import AsyncOmniq, InvalidArgument, OmniqClient, Settings, SettingsError, Worker
from omniq._limits import DEFAULT_CHILD_TTL_MS, DEFAULT_KEEP_COMPLETED, DEFAULT_MAX_PAYLOAD_BYTES
from omniq.settings import CLIENT_FIELDS, WORKER_FIELDS, env_name


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the fields ------------------------------------------------------------------------


def test_defaults_match_the_constructors() -> None:
    s = Settings()
    assert s.url == "redis://127.0.0.1:6379/0"
    assert s.max_payload_bytes == DEFAULT_MAX_PAYLOAD_BYTES
    assert s.keep_completed == DEFAULT_KEEP_COMPLETED
    assert s.child_ttl_ms == DEFAULT_CHILD_TTL_MS
    assert s.queues == []
    client_params = inspect.signature(AsyncOmniq.__init__).parameters
    for name in CLIENT_FIELDS:
        if name != "url":
            assert getattr(s, name) == client_params[name].default, name
    worker_params = inspect.signature(Worker.__init__).parameters
    for name in WORKER_FIELDS:
        assert getattr(s, name) == worker_params[name].default, name
    # every AsyncOmniq option the URL does not carry is a field
    url_carried = {"redis", "self", "url", "host", "port", "db", "username", "password", "ssl"}
    assert set(client_params) - url_carried == set(CLIENT_FIELDS) - {"url"}
    assert set(Settings.__struct_fields__) == {*CLIENT_FIELDS, *WORKER_FIELDS, "queues"}


def test_constructor_applies_the_value_rules() -> None:
    with pytest.raises(SettingsError, match=r"^Settings, key 'concurrency': concurrency must be "
                       r"at least 1"):
        Settings(concurrency=0)
    with pytest.raises(SettingsError, match=r"^Settings, key 'url': invalid Redis URL"):
        Settings(url="http://x")


def test_options_split() -> None:
    s = Settings(url="redis://h:1/0", concurrency=4, queues=["a"], keep_failed=3)
    assert s.client_options()["url"] == "redis://h:1/0"
    assert s.client_options()["keep_failed"] == 3
    assert set(s.client_options()) == set(CLIENT_FIELDS)
    assert s.worker_options()["concurrency"] == 4
    assert "queues" not in s.worker_options()
    assert set(s.worker_options()) == set(WORKER_FIELDS)


# -- each source -----------------------------------------------------------------------


def test_from_mapping() -> None:
    s = Settings.from_mapping({"url": "redis://h:2/1", "queues": ("a", "b"), "drain": True,
                               "socket_timeout": 2})
    assert (s.url, s.queues, s.drain, s.socket_timeout) == ("redis://h:2/1", ["a", "b"],
                                                            True, 2.0)


def test_toml_top_level_and_omniq_table(tmp_path: Path) -> None:
    top = write(tmp_path, "omniq.toml", 'url = "redis://h:3/0"\nconcurrency = 5\n'
                'queues = ["high", "low"]\nkeep_failed = 10\n')
    s = Settings.load(file=top, env={})
    assert (s.url, s.concurrency, s.queues, s.keep_failed) == (
        "redis://h:3/0", 5, ["high", "low"], 10)
    table = write(tmp_path, "app.toml", '[other]\nx = 1\n\n[omniq]\nconcurrency = 7\n'
                  'grace_period_s = 2.5\n')
    s = Settings.load(file=str(table), env={})
    assert (s.concurrency, s.grace_period_s) == (7, 2.5)


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path, "omniq" + suffix,
                 "url: redis://h:4/0\nqueues: [a, b]\nverbose: true\nkeep_failed: 0\n")
    s = Settings.load(file=path, env={})
    assert (s.url, s.queues, s.verbose, s.keep_failed) == ("redis://h:4/0", ["a", "b"], True, 0)
    nested = write(tmp_path, "nested" + suffix, "omniq:\n  threads: 4\n")
    assert Settings.load(file=nested, env={}).threads == 4
    empty = write(tmp_path, "empty" + suffix, "")
    assert Settings.load(file=empty, env={}) == Settings()


def test_environment() -> None:
    env = {
        "OMNIQ_URL": "redis://h:5/0", "OMNIQ_QUEUES": "a, b,,c", "OMNIQ_CONCURRENCY": "8",
        "OMNIQ_DRAIN": "yes", "OMNIQ_VERBOSE": "0", "OMNIQ_LEAN_TRANSPORT": "false",
        "OMNIQ_SOCKET_TIMEOUT": "2.5", "OMNIQ_KEEP_FAILED": "12", "OMNIQ_CLIENT_NAME": "w1",
        "OMNIQ_THREADS": "", "OMNIQ_UNRELATED": "ignored", "PATH": "/bin",
    }
    s = Settings.load(env=env)
    assert (s.url, s.queues, s.concurrency, s.drain, s.verbose, s.lean_transport) == (
        "redis://h:5/0", ["a", "b", "c"], 8, True, False, False)
    assert (s.socket_timeout, s.keep_failed, s.client_name, s.threads) == (2.5, 12, "w1", None)
    assert env_name("poll_max_s") == "OMNIQ_POLL_MAX_S"


def test_environment_url_names() -> None:
    assert Settings.load(env={"OMNIQ_REDIS_URL": "redis://r:1/0"}).url == "redis://r:1/0"
    both = {"OMNIQ_REDIS_URL": "redis://r:1/0", "OMNIQ_URL": "redis://u:1/0"}
    assert Settings.load(env=both).url == "redis://u:1/0"  # OMNIQ_URL wins
    assert Settings.load(env={"OMNIQ_URL": "", "OMNIQ_REDIS_URL": "redis://r:1/0"}).url == (
        "redis://r:1/0")


def test_default_env_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIQ_CONCURRENCY", "3")
    assert Settings.load().concurrency == 3
    assert Settings.load(env={}).concurrency == 1


# -- precedence ------------------------------------------------------------------------


def test_precedence_each_pair(tmp_path: Path) -> None:
    path = write(tmp_path, "omniq.toml", "concurrency = 2\nthreads = 2\nprocesses = 2\n")
    env = {"OMNIQ_CONCURRENCY": "3", "OMNIQ_THREADS": "3"}
    s = Settings.load(file=path, env=env, overrides={"concurrency": 4, "threads": None})
    assert s.concurrency == 4  # overrides > environment > file
    assert s.threads == 3  # environment > file (a None override is ignored)
    assert s.processes == 2  # file > defaults
    assert s.poll_max_s == 0.5  # defaults
    assert Settings.load(file=path, env={}, overrides={"processes": 9}).processes == 9
    assert Settings.load(file=path, env=env).concurrency == 3
    assert Settings.load(env=env, overrides={"concurrency": 5}).concurrency == 5


def test_replace() -> None:
    s = Settings(concurrency=2, queues=["a"])
    t = s.replace({"concurrency": 3, "queues": None})
    assert (t.concurrency, t.queues) == (3, ["a"])
    with pytest.raises(SettingsError, match=r"^keyword arguments, key 'concurrency': "):
        s.replace({"concurrency": 0})


# -- errors name the key and the source ------------------------------------------------


_E = "(environment): "


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OMNIQ_CONCURRENCY": "abc"}, f"OMNIQ_CONCURRENCY {_E}expected an int, got 'abc'"),
        ({"OMNIQ_CONCURRENCY": "1.5"}, f"OMNIQ_CONCURRENCY {_E}expected an int"),
        ({"OMNIQ_CONCURRENCY": "0"}, f"OMNIQ_CONCURRENCY {_E}concurrency must be at least 1"),
        ({"OMNIQ_CONCURRENCY": "1001"}, f"OMNIQ_CONCURRENCY {_E}concurrency must be at most"),
        ({"OMNIQ_DRAIN": "maybe"}, f"OMNIQ_DRAIN {_E}expected a bool"),
        ({"OMNIQ_POLL_MAX_S": "fast"}, f"OMNIQ_POLL_MAX_S {_E}expected a number"),
        ({"OMNIQ_POLL_MAX_S": "nan"}, f"OMNIQ_POLL_MAX_S {_E}expected a number"),
        ({"OMNIQ_KEEP_FAILED": "-1"}, f"OMNIQ_KEEP_FAILED {_E}keep_failed must not be negative"),
        ({"OMNIQ_REDIS_URL": "http://x"}, f"OMNIQ_REDIS_URL {_E}invalid Redis URL"),
        ({"OMNIQ_QUEUES": "a,a"}, f"OMNIQ_QUEUES {_E}a queue is listed twice"),
    ],
)
def test_environment_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.load(env=env)
    assert str(info.value).startswith(message)


def test_file_errors(tmp_path: Path) -> None:
    bad = write(tmp_path, "omniq.toml", 'keep_failed = "many"\n')
    with pytest.raises(SettingsError, match=r"^.*omniq\.toml, key 'keep_failed': keep_failed "
                       r"must be an int, not str"):
        Settings.load(file=bad, env={})
    typo = write(tmp_path, "typo.toml", "concurency = 3\n")
    with pytest.raises(SettingsError, match=r"unknown key 'concurency' in .*typo\.toml "
                       r"\(did you mean 'concurrency'\?\)"):
        Settings.load(file=typo, env={})
    yaml_bad = write(tmp_path, "omniq.yaml", "cluster: maybe\n")
    with pytest.raises(SettingsError, match=r"omniq\.yaml, key 'cluster': expected bool, got str"):
        Settings.load(file=yaml_bad, env={})
    yaml_typo = write(tmp_path, "typo.yml", "omniq:\n  kep_failed: 3\n")
    with pytest.raises(SettingsError, match=r"unknown key 'kep_failed' in .*typo\.yml "
                       r"\(did you mean 'keep_failed'\?\)"):
        Settings.load(file=yaml_typo, env={})
    broken = write(tmp_path, "broken.toml", "url = \n")
    with pytest.raises(SettingsError, match=r"broken\.toml: invalid TOML"):
        Settings.load(file=broken, env={})
    with pytest.raises(SettingsError, match=r"missing\.toml: settings file not found"):
        Settings.load(file=tmp_path / "missing.toml", env={})
    ini = write(tmp_path, "omniq.ini", "")
    with pytest.raises(SettingsError, match=r"omniq\.ini: unknown settings file type '\.ini'"):
        Settings.load(file=ini, env={})
    listed = write(tmp_path, "list.yaml", "- a\n")
    with pytest.raises(SettingsError, match=r"list\.yaml: expected a mapping"):
        Settings.load(file=listed, env={})


def test_yaml_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "omniq.yaml", "concurrency: 2\n")
    real_import = builtins.__import__

    def no_yaml(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "yaml":
            raise ImportError("no yaml")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "yaml", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_yaml)
    with pytest.raises(SettingsError, match=r"pip install 'omniq-aio\[yaml\]'"):
        Settings.load(file=path, env={})


def test_mapping_and_override_errors() -> None:
    with pytest.raises(SettingsError, match=r"^dict, key 'socket_timeout': socket_timeout must "
                       r"be a finite number > 0"):
        Settings.from_mapping({"socket_timeout": 0})
    with pytest.raises(SettingsError, match=r"^unknown key 'concurency' in dict \(did you mean "
                       r"'concurrency'\?\)"):
        Settings.from_mapping({"concurency": 2})
    with pytest.raises(SettingsError, match=r"^cli, key 'queues': queues must be a list"):
        Settings.from_mapping({"queues": "a"}, source="cli")
    with pytest.raises(SettingsError, match=r"^overrides, key 'concurrency': concurrency must be "
                       r"an int, not bool"):
        Settings.load(env={}, overrides={"concurrency": True})
    with pytest.raises(SettingsError, match=r"^unknown key 'redis' in overrides$"):
        Settings.load(env={}, overrides={"redis": object()})
    with pytest.raises(SettingsError, match=r"^dict, key 'url': expected str, got int"):
        Settings.from_mapping({"url": 5})
    with pytest.raises(SettingsError, match=r"^dict, key 'queues': queue name"):
        Settings.from_mapping({"queues": [""]})
    assert issubclass(SettingsError, InvalidArgument)
    assert issubclass(SettingsError, ValueError)


# -- the from_settings constructors on the test server ---------------------------------


async def test_async_from_settings_publishes(omniq_redis_url: str, omniq: AsyncOmniq) -> None:
    settings = Settings(url=omniq_redis_url, keep_completed=5)
    async with AsyncOmniq.from_settings(settings, client_name="settings-test") as client:
        assert client.keep_completed == 5
        job_id = await client.publish("settings-q", {"n": 1})
    info = await omniq.get_job("settings-q", job_id)
    assert info is not None
    assert info.state == "wait"
    async with AsyncOmniq.from_settings({"url": omniq_redis_url, "keep_failed": 2}) as client:
        assert client.keep_failed == 2
        assert await client.ping()
    with pytest.raises(SettingsError, match="keyword arguments, key 'keep_completed'"):
        AsyncOmniq.from_settings(settings, keep_completed=-1)


def test_sync_from_settings_publishes(omniq_redis_url: str) -> None:
    with OmniqClient.from_settings({"url": omniq_redis_url}) as client:
        job_id = client.publish("settings-sync", {"n": 2})
        info = client.get_job("settings-sync", job_id)
        assert info is not None
        assert info.state == "wait"
    with OmniqClient.from_settings(Settings(url="redis://nowhere:1/0"),
                                   url=omniq_redis_url) as client:
        assert client.ping()


async def test_worker_from_settings_drains_the_queues(omniq: AsyncOmniq,
                                                      omniq_redis_url: str) -> None:
    seen: list[Any] = []

    async def handler(ctx: Any) -> None:
        seen.append((ctx.queue, ctx.payload["n"]))

    for i in range(3):
        await omniq.publish("set-a", {"n": i})
    await omniq.publish("set-b", {"n": 9})
    path_settings = Settings.load(env={"OMNIQ_QUEUES": "set-a,set-b", "OMNIQ_DRAIN": "1",
                                       "OMNIQ_CONCURRENCY": "2"})
    worker = Worker.from_settings(omniq, handler, path_settings)
    assert (worker.queues, worker.concurrency, worker.drain) == (["set-a", "set-b"], 2, True)
    await worker.run()
    assert worker.stats.completed == 4
    assert sorted(seen) == [("set-a", 0), ("set-a", 1), ("set-a", 2), ("set-b", 9)]
    only_b = Worker.from_settings(omniq, handler, path_settings, queues=["set-b"],
                                  concurrency=3, handle_signals=False)
    assert (only_b.queues, only_b.concurrency) == (["set-b"], 3)
    with pytest.raises(InvalidArgument, match="at least one queue"):
        Worker.from_settings(omniq, handler, Settings())
