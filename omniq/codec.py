"""Payload and result coding with msgspec (encoders and decoders are built once).

A job payload is a JSON object or array (the OmniQ v1 contract). Anything else, NaN or
Infinity, non-UTF-8 text, nesting deeper than ``MAX_DEPTH`` or an encoding larger than the
configured limit raises :class:`~omniq.errors.InvalidPayload` before anything is written.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import traceback
from typing import Any

import msgspec

from omniq._limits import DEFAULT_MAX_PAYLOAD_BYTES, MAX_DEPTH, MAX_ERROR_BYTES
from omniq.errors import InvalidPayload

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "MAX_DEPTH",
    "MAX_ERROR_BYTES",
    "decode_payload",
    "encode_json_value",
    "encode_payload",
    "encode_result",
    "failure_text",
    "format_due",
    "to_json_value",
    "truncate_error",
]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_SCALARS = (str, int, bool, type(None))


def _with_article(noun: str) -> str:
    """``"a dict"``, ``"an object"``: the indefinite article by the noun's first letter."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _check_tree(value: Any) -> None:
    """Reject NaN/Infinity, non-str keys and excessive nesting (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        obj, depth = stack.pop()
        t = type(obj)
        if t is dict:
            if depth > MAX_DEPTH:
                raise InvalidPayload(f"payload is nested deeper than {MAX_DEPTH} levels")
            for k, v in obj.items():
                if type(k) is not str:
                    raise InvalidPayload(f"payload object keys must be str, not {type(k).__name__}")
                if type(v) not in _SCALARS:
                    stack.append((v, depth + 1))
        elif t is list or t is tuple:
            if depth > MAX_DEPTH:
                raise InvalidPayload(f"payload is nested deeper than {MAX_DEPTH} levels")
            for v in obj:
                if type(v) not in _SCALARS:
                    stack.append((v, depth + 1))
        elif t is float:
            if not math.isfinite(obj):
                raise InvalidPayload("payload contains NaN or Infinity, which JSON cannot carry")
        elif isinstance(obj, str | int | bool) or obj is None:
            continue
        elif isinstance(obj, float):
            if not math.isfinite(obj):
                raise InvalidPayload("payload contains NaN or Infinity, which JSON cannot carry")
        else:
            raise InvalidPayload(
                f"payload contains {_with_article(t.__name__)}, which is not JSON; "
                "use publish_json for structs and dataclasses"
            )


def encode_payload(payload: Any, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> bytes:
    """Encode a JSON object or array (dict, list or tuple of JSON values) to compact JSON."""
    if not isinstance(payload, dict | list | tuple):
        raise InvalidPayload(
            f"payload must be a JSON object or array (dict or list), not {type(payload).__name__}"
        )
    _check_tree(payload)
    try:
        data = _encoder.encode(payload)
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise InvalidPayload(f"payload cannot be encoded as JSON: {exc}") from exc
    if len(data) > max_bytes:
        raise InvalidPayload(f"payload is {len(data)} bytes, over the limit of {max_bytes}")
    return data


def to_json_value(obj: Any) -> Any:
    """Convert a msgspec Struct, dataclass, pydantic model or attrs-like value to builtins."""
    dump = getattr(obj, "model_dump", None)  # pydantic v2
    if callable(dump) and not isinstance(obj, type):
        return dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return msgspec.to_builtins(obj)
    if isinstance(obj, msgspec.Struct):
        return msgspec.to_builtins(obj)
    try:
        return msgspec.to_builtins(obj)
    except TypeError as exc:
        raise InvalidPayload(f"cannot convert {type(obj).__name__} to JSON: {exc}") from exc


def decode_payload(raw: str | bytes) -> Any:
    """Parse a stored payload; text that is not valid JSON is returned unchanged."""
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def encode_result(value: Any, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> bytes:
    """Encode a handler's return value for storage with the job (any JSON value)."""
    try:
        if not isinstance(value, dict | list | tuple | str | int | float | bool):
            value = to_json_value(value)
        _check_tree([value])
        data = _encoder.encode(value)
    except InvalidPayload:
        raise
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise InvalidPayload(f"result cannot be encoded as JSON: {exc}") from exc
    if len(data) > max_bytes:
        raise InvalidPayload(f"result is {len(data)} bytes, over the limit of {max_bytes}")
    return data


def encode_json_value(value: Any, max_bytes: int, what: str) -> bytes:
    """Encode a plain JSON value (dict with str keys, list, str, int, finite float, bool,
    None; nothing converted: a set, bytes or an object is refused) named ``what`` in the
    errors."""
    try:
        _check_tree([value])
        data = _encoder.encode(value)
    except InvalidPayload as exc:
        raise InvalidPayload(str(exc).replace("payload", what, 1)) from None
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise InvalidPayload(f"{what} cannot be encoded as JSON: {exc}") from exc
    if len(data) > max_bytes:
        raise InvalidPayload(f"{what} is {len(data)} bytes, over the limit of {max_bytes}")
    return data


def truncate_error(text: str, max_bytes: int = MAX_ERROR_BYTES) -> str:
    """Cut text to at most ``max_bytes`` UTF-8 bytes without splitting a character (D8)."""
    data = text.encode("utf-8", "replace")  # lone surrogates become "?"
    return data[:max_bytes].decode("utf-8", "ignore")


def failure_text(exc: BaseException, max_bytes: int = MAX_ERROR_BYTES) -> str:
    """The ``last_error`` stored for a failed attempt: ``"Type: message"`` on the first line,
    then the traceback, all within ``max_bytes`` UTF-8 bytes.

    When the traceback does not fit, its innermost frames (the end, where the error was
    raised) are kept and the lines cut from the outer frames are counted in their place.
    """
    head = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    head = truncate_error(head, max_bytes)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip("\n")
    room = max_bytes - len(head.encode("utf-8", "replace")) - 1
    if room <= 0 or exc.__traceback__ is None:
        return head
    lines = tb.split("\n")
    text = "\n".join(lines)
    if len(text.encode("utf-8", "replace")) <= room:
        return head + "\n" + text
    # keep the first line ("Traceback ...") and as many of the last lines as fit
    first, rest = lines[0], lines[1:]
    kept: list[str] = []
    size = len(first.encode("utf-8", "replace")) + 40  # the marker line
    for line in reversed(rest):
        n = len(line.encode("utf-8", "replace")) + 1
        if size + n > room:
            break
        kept.append(line)
        size += n
    kept.reverse()
    marker = f"  [... {len(rest) - len(kept)} lines cut ...]"
    return truncate_error("\n".join([head, first, marker, *kept]), max_bytes)


def format_due(due_ms: int, now_ms: int | None = None) -> str:
    """A due time for people: ``"in 5.0 s (2026-12-02T01:23:08.123Z)"``."""
    if now_ms is None:
        now_ms = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
    delta = (due_ms - now_ms) / 1000
    when = datetime.datetime.fromtimestamp(due_ms / 1000, datetime.UTC)
    iso = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    rel = f"in {delta:.1f} s" if delta >= 0 else f"{-delta:.1f} s ago"
    return f"{rel} ({iso})"
