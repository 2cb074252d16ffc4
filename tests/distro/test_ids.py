"""Chain instance ID parsing and formatting (hypothesis)."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainotel.ids import InvalidInstanceId, format_instance_id, parse_instance_id, try_parse_instance_id

trace_ids = st.integers(min_value=1, max_value=(1 << 128) - 1)


@given(trace_ids, st.booleans(), st.booleans())
def test_round_trip_any_case_with_or_without_dashes(trace_id, upper, dashes):
    text = format_instance_id(trace_id)
    assert len(text) == 36 and text == text.lower()
    assert str(uuid.UUID(int=trace_id)) == text
    if not dashes:
        text = text.replace("-", "")
    if upper:
        text = text.upper()
    assert parse_instance_id(text) == trace_id


@given(st.text(max_size=300))
def test_arbitrary_text_parses_only_if_it_has_the_shape(text):
    stripped = text.strip()
    hexdigits = set("0123456789abcdefABCDEF")
    shaped = (len(stripped) == 32 and set(stripped) <= hexdigits) or (
        len(stripped) == 36
        and [len(p) for p in stripped.split("-")] == [8, 4, 4, 4, 12]
        and set(stripped.replace("-", "")) <= hexdigits
    )
    valid = shaped and int(stripped.replace("-", ""), 16) != 0
    if valid:
        assert parse_instance_id(text) == int(stripped.replace("-", ""), 16)
    else:
        with pytest.raises(InvalidInstanceId):
            parse_instance_id(text)
        assert try_parse_instance_id(text) is None


@pytest.mark.parametrize(
    "value",
    ["0" * 32, "00000000-0000-0000-0000-000000000000", "0x" + "1" * 30, "1_" * 16, "{" + "1" * 32 + "}",
     "１" * 32, "1" * 33, "1234567-89ab-cdef-0123-456789abcdef0", "a" * 129],
)
def test_rejected(value):
    with pytest.raises(InvalidInstanceId):
        parse_instance_id(value)


def test_format_range():
    with pytest.raises(ValueError):
        format_instance_id(1 << 128)
