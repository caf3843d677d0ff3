"""Snapshot every key of a (small) test database in one round trip.

Same idea as ``tests/core/core_util.dump_db`` (type, full value, expiry of every key), but
done by one read-only Lua call so a state machine can afford it after every step. Streams
(the event log ``{q}:events``) are dumped entry by entry, ids included, so an event written
by a refused call is a difference like any other write.
Shared by tests/reliability/model, inputs and growth.
"""

from __future__ import annotations

from typing import Any

import redis

_DUMP = """
local out = {}
for _, k in ipairs(redis.call('KEYS', '*')) do
  local t = redis.call('TYPE', k)['ok']
  local v
  if t == 'string' then v = redis.call('GET', k)
  elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
  elseif t == 'hash' then v = redis.call('HGETALL', k)
  elseif t == 'set' then v = redis.call('SMEMBERS', k)
  elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
  elseif t == 'stream' then v = redis.call('XRANGE', k, '-', '+')
  else v = '?' end
  out[#out + 1] = {k, t, redis.call('PTTL', k), v}
end
return out
"""

Dump = dict[str, tuple[str, Any, int]]


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _score(s: Any) -> int | float:
    f = float(_text(s))
    return int(f) if f.is_integer() else f


def dump_keyspace(r: redis.Redis) -> Dump:
    """key -> (type, value, pttl). Values: str, list, dict (hash; zset member -> score),
    sorted list (set), list of ``(entry id, {field: value})`` (stream, oldest first).
    pttl is -1 for no expiry."""
    out: Dump = {}
    if isinstance(r, redis.RedisCluster):  # every master holds a part of the keyspace
        rows = [row for node in r.get_primaries()
                for row in r.execute_command("EVAL", _DUMP, 0, target_nodes=node)]
    else:
        rows = r.eval(_DUMP, 0)
    for k, t, pttl, v in rows:
        key, kind = _text(k), _text(t)
        value: Any
        if kind == "string":
            value = _text(v)
        elif kind == "list":
            value = [_text(x) for x in v]
        elif kind == "hash":
            value = {_text(v[i]): _text(v[i + 1]) for i in range(0, len(v), 2)}
        elif kind == "set":
            value = sorted(_text(x) for x in v)
        elif kind == "zset":
            value = {_text(v[i]): _score(v[i + 1]) for i in range(0, len(v), 2)}
        elif kind == "stream":
            value = [(_text(eid), {_text(f[i]): _text(f[i + 1]) for i in range(0, len(f), 2)})
                     for eid, f in v]
        else:  # pragma: no cover - nothing of ours uses other types
            value = v
        out[key] = (kind, value, int(pttl))
    return out


def diff(before: Dump, after: Dump) -> list[str]:
    """Human-readable differences between two dumps (empty when equal)."""
    lines = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a is None:
            lines.append(f"+ {key} = {b}")
        elif b is None:
            lines.append(f"- {key} = {a}")
        elif a[:2] != b[:2] or (a[2] == -1) != (b[2] == -1):
            lines.append(f"~ {key}: {a} -> {b}")
    return lines
