"""The codec's refusal messages read as English ("an object", not "a object")."""

from __future__ import annotations

import datetime
import decimal

import pytest

from omniq.codec import encode_payload
from omniq.errors import InvalidPayload


class Invoice:
    pass


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (object(), "payload contains an object,"),
        (Invoice(), "payload contains an Invoice,"),
        ({1, 2}, "payload contains a set,"),
        (b"raw", "payload contains a bytes,"),
        (decimal.Decimal("1.5"), "payload contains a Decimal,"),
        (datetime.date(2026, 1, 1), "payload contains a date,"),
    ],
)
def test_unsupported_value_message_uses_the_right_article(value: object, phrase: str) -> None:
    with pytest.raises(InvalidPayload) as info:
        encode_payload({"field": [value]})
    assert str(info.value).startswith(phrase)
    assert "use publish_json for structs and dataclasses" in str(info.value)
