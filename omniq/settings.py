"""One settings object for the client and the worker, from every source.

:class:`Settings` holds the options of :class:`~omniq.AsyncOmniq` (except ``redis``: the
URL carries host, port, db, credentials and TLS) and of :class:`~omniq.Worker`. Build it
from keyword arguments or a dict (:meth:`Settings.from_mapping`) or from the layered
sources (:meth:`Settings.load`)::

    overrides (CLI flags, keyword arguments) > OMNIQ_* environment > file > defaults

Every value is checked when the settings are built, with the rules the client and the
worker apply (``omniq._protocol.common``, ``omniq._keys``, the URL parser of the
connection layer), so a bad value fails before anything connects, with a
:class:`~omniq.errors.SettingsError` that names the key and its source.

Pure: no I/O except reading the file given and the environment mapping given.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import msgspec

from omniq._keys import validate_queue_name
from omniq._limits import (
    DEFAULT_CHILD_TTL_MS,
    DEFAULT_EVENTS_MAXLEN,
    DEFAULT_KEEP_COMPLETED,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_URL,
)
from omniq._protocol.common import check_concurrency, check_non_negative, check_positive
from omniq.errors import InvalidArgument, SettingsError

__all__ = [
    "CLIENT_FIELDS", "ENV_PREFIX", "WORKER_FIELDS", "Settings", "SettingsError", "env_name",
    "resolve",
]

ENV_PREFIX = "OMNIQ_"


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of the client (``AsyncOmniq`` / ``OmniqClient``) and of the worker.

    See ``docs/configuration.md`` for every field, its default and its environment name.
    """

    # -- connection and client (AsyncOmniq.__init__) ------------------------------------
    url: str = DEFAULT_URL
    client_name: str | None = None
    socket_timeout: float | None = None
    max_connections: int | None = None
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    cluster: bool = False
    lean_transport: bool = True
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    keep_completed: int = DEFAULT_KEEP_COMPLETED
    keep_failed: int | None = None
    keep_completed_ms: int = 0
    keep_failed_ms: int = 0
    events_maxlen: int = DEFAULT_EVENTS_MAXLEN
    child_ttl_ms: int = DEFAULT_CHILD_TTL_MS
    # -- worker (Worker.__init__) -------------------------------------------------------
    queues: list[str] = msgspec.field(default_factory=list)
    concurrency: int = 1
    threads: int | None = None
    processes: int | None = None
    drain: bool = False
    verbose: bool = False
    grace_period_s: float = 30.0
    run_timeout_ms: int = 0
    maintenance_interval_s: float = 1.0
    poll_max_s: float = 0.5
    schedules: bool = True

    def __post_init__(self) -> None:
        # the value rules hold however the struct was made (Settings(...) included)
        for key, check in _CHECKS.items():
            try:
                check(getattr(self, key))
            except InvalidArgument as e:
                raise SettingsError(f"Settings, key {key!r}: {e}") from None

    @classmethod
    def load(
        cls,
        *,
        file: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Self:
        """Settings from the layered sources: ``overrides`` (None values are ignored) >
        ``env`` (``OMNIQ_*`` variables; default ``os.environ``, ``{}`` ignores it) >
        ``file`` (``.toml``, ``.yaml``/``.yml``) > defaults.

        :raises SettingsError: a bad value or an unknown key, naming the key and source.
        """
        layers: list[tuple[dict[str, Any], Callable[[str], str]]] = []
        if file is not None:
            layers.append(_file_layer(file))
        layers.append(_env_layer(os.environ if env is None else env))
        if overrides is not None:
            layers.append(_mapping_layer(overrides, "overrides", skip_none=True))
        return cls._build(layers)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "dict") -> Self:
        """Settings from a dict of field values (defaults for the others); ``source``
        names it in error messages. :raises SettingsError:"""
        return cls._build([_mapping_layer(data, source, skip_none=False)])

    def replace(self, overrides: Mapping[str, Any], *, source: str = "keyword arguments") -> Self:
        """A copy with ``overrides`` applied (None values ignored), checked like any
        other source. :raises SettingsError:"""
        base = {f: getattr(self, f) for f in self.__struct_fields__}
        return self._build([
            (base, lambda k: f"settings, key {k!r}"),
            _mapping_layer(overrides, source, skip_none=True),
        ])

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``AsyncOmniq(...)`` (``url=`` included; ``OmniqClient``
        names it ``redis_url``, which its ``from_settings`` handles)."""
        return {f: getattr(self, f) for f in CLIENT_FIELDS}

    def worker_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Worker(...)`` / ``consume(...)``, without ``queues``."""
        return {f: getattr(self, f) for f in WORKER_FIELDS}

    @classmethod
    def _build(cls, layers: list[tuple[dict[str, Any], Callable[[str], str]]]) -> Self:
        merged: dict[str, Any] = {}
        where: dict[str, Callable[[str], str]] = {}
        for values, name in layers:
            for key, value in values.items():
                merged[key] = value
                where[key] = name
        for key, value in merged.items():
            try:
                merged[key] = _CHECKS.get(key, _same)(value)
            except InvalidArgument as e:
                raise SettingsError(f"{where[key](key)}: {e}") from None
        try:
            return msgspec.convert(merged, cls, strict=True)
        except msgspec.ValidationError as e:
            text = str(e)
            m = re.search(r"at `\$\.(\w+)", text)
            if m is None:  # pragma: no cover - every field error carries its path
                raise SettingsError(text) from None
            key = m.group(1)
            problem = text.split(" - at ")[0].replace("`", "")
            problem = problem[:1].lower() + problem[1:]
            raise SettingsError(
                f"{where[key](key)}: {problem} ({merged[key]!r})") from None


CLIENT_FIELDS = (
    "url", "client_name", "socket_timeout", "max_connections", "ssl_ca_certs", "ssl_certfile",
    "ssl_keyfile", "cluster", "lean_transport", "max_payload_bytes", "keep_completed",
    "keep_failed", "keep_completed_ms", "keep_failed_ms", "events_maxlen", "child_ttl_ms",
)
"""The fields that are options of ``AsyncOmniq``."""
WORKER_FIELDS = (
    "concurrency", "threads", "processes", "drain", "verbose", "grace_period_s",
    "run_timeout_ms", "maintenance_interval_s", "poll_max_s", "schedules",
)
"""The fields that are options of ``Worker`` (``queues`` apart)."""

_FIELDS = tuple(Settings.__struct_fields__)
_HINTS = typing.get_type_hints(Settings)


def resolve(settings: Settings | Mapping[str, Any] | None,
            overrides: Mapping[str, Any]) -> Settings:
    """What the ``from_settings`` constructors were given, with the keyword ``overrides``
    applied: None means :meth:`Settings.load` (environment and defaults)."""
    if settings is None:
        return Settings.load(overrides=overrides)
    if not isinstance(settings, Settings):
        settings = Settings.from_mapping(settings)
    return settings.replace(overrides) if overrides else settings


def env_name(field: str) -> str:
    """The environment variable of a field: ``OMNIQ_<FIELD>`` (``url`` also reads the
    project's ``OMNIQ_REDIS_URL``; ``OMNIQ_URL`` wins when both are set)."""
    return ENV_PREFIX + field.upper()


# -- value checks: the client's and the worker's rules ---------------------------------


def _same(value: Any) -> Any:
    return value


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else check(v)


def _url(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # the type error is msgspec's
    from omniq.aio._connect import ConnectionSettings  # the one URL parser (no I/O)

    ConnectionSettings.from_options(url=value)
    return value


def _seconds(name: str, *, positive: bool) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value  # the type error is msgspec's
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            need = "> 0" if positive else ">= 0"
            raise InvalidArgument(f"{name} must be a finite number {need}, got {value!r}")
        return float(value)
    return check


def _queues(value: Any) -> Any:
    if isinstance(value, str):
        raise InvalidArgument("queues must be a list of queue names, not a single string")
    if not isinstance(value, list | tuple):
        return value
    names = [validate_queue_name(q) for q in value]
    if len(set(names)) != len(names):
        raise InvalidArgument("a queue is listed twice")
    return names


def _int_check(check: Callable[[object, str], int], name: str) -> Callable[[Any], Any]:
    return lambda v: check(v, name)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "url": _url,
    "socket_timeout": _optional(_seconds("socket_timeout", positive=True)),
    "max_connections": _optional(_int_check(check_positive, "max_connections")),
    "max_payload_bytes": _int_check(check_positive, "max_payload_bytes"),
    "keep_completed": _int_check(check_non_negative, "keep_completed"),
    "keep_failed": _optional(_int_check(check_non_negative, "keep_failed")),
    "keep_completed_ms": _int_check(check_non_negative, "keep_completed_ms"),
    "keep_failed_ms": _int_check(check_non_negative, "keep_failed_ms"),
    "events_maxlen": _int_check(check_non_negative, "events_maxlen"),
    "child_ttl_ms": _int_check(check_non_negative, "child_ttl_ms"),
    "queues": _queues,
    "concurrency": check_concurrency,
    "threads": _optional(_int_check(check_positive, "threads")),
    "processes": _optional(_int_check(check_positive, "processes")),
    "grace_period_s": _seconds("grace_period_s", positive=False),
    "run_timeout_ms": _int_check(check_non_negative, "run_timeout_ms"),
    "maintenance_interval_s": _seconds("maintenance_interval_s", positive=True),
    "poll_max_s": _seconds("poll_max_s", positive=True),
}


# -- sources ---------------------------------------------------------------------------


def _unknown(key: str, source: str) -> SettingsError:
    close = difflib.get_close_matches(key, _FIELDS, n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SettingsError(f"unknown key {key!r} in {source}{hint}")


def _mapping_layer(
    data: Mapping[str, Any], source: str, *, skip_none: bool
) -> tuple[dict[str, Any], Callable[[str], str]]:
    if not isinstance(data, Mapping):
        raise SettingsError(f"{source}: expected a mapping of settings, got "
                            f"{type(data).__name__}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _FIELDS:
            raise _unknown(str(key), source)
        if value is None and skip_none:
            continue
        values[key] = list(value) if key == "queues" and isinstance(value, tuple) else value
    return values, lambda k: f"{source}, key {k!r}"


def _file_layer(file: str | os.PathLike[str]) -> tuple[dict[str, Any], Callable[[str], str]]:
    path = Path(file)
    source = str(file)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SettingsError(
            f"{source}: unknown settings file type {path.suffix or '(none)'!r}: "
            "use .toml, .yaml or .yml")
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"{source}: settings file not found") from None
    except OSError as e:
        raise SettingsError(f"{source}: cannot read the settings file: {e}") from None
    data: Any
    if suffix == ".toml":
        try:
            data = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SettingsError(f"{source}: invalid TOML: {e}") from None
    else:
        try:
            import yaml
        except ImportError:
            raise SettingsError(
                f"{source}: YAML settings need PyYAML: pip install 'omniq-aio[yaml]'"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SettingsError(f"{source}: invalid YAML: {e}") from None
        if data is None:
            data = {}
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: expected a mapping of settings at the top level")
    if isinstance(data.get("omniq"), dict):  # an [omniq] table: only it is read
        data = data["omniq"]
    return _mapping_layer(data, source, skip_none=False)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _base_type(hint: Any) -> Any:
    """``int`` of ``int | None``; the hint itself otherwise."""
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0]
    return hint


def _parse_env(field: str, raw: str) -> Any:
    kind = _base_type(_HINTS[field])
    text = raw.strip()
    if kind is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise InvalidArgument(f"expected a bool (1/0/true/false/yes/no), got {raw!r}")
    if kind is int:
        if not _INT.fullmatch(text):
            raise InvalidArgument(f"expected an int, got {raw!r}")
        return int(text)
    if kind is float:
        if not _FLOAT.fullmatch(text):
            raise InvalidArgument(f"expected a number, got {raw!r}")
        return float(text)
    if typing.get_origin(kind) is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return raw


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], Callable[[str], str]]:
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    for field in _FIELDS:
        candidates = [env_name(field)]
        if field == "url":
            candidates.append("OMNIQ_REDIS_URL")  # the project's variable; OMNIQ_URL wins
        for var in candidates:
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue  # empty: unset
            try:
                values[field] = _parse_env(field, raw)
            except InvalidArgument as e:
                raise SettingsError(f"{var} (environment): {e}") from None
            names[field] = var
            break
    return values, lambda k: f"{names[k]} (environment)"
