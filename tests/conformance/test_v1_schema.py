"""The FreeBSD layer's stdio protocol (version 1) is validated against its published
schema (``xbdspec/conformance/schema/stdio-v1.schema.json``, fastjsonschema): the
message kind that answers the request, or an error."""

from __future__ import annotations

import pytest

from xbdspec.conformance import protocol
from xbdspec.errors import InputError


@pytest.mark.parametrize(
    ("op", "response", "says"),
    [
        ("hello", {"id": 1, "ok": True, "name": 7}, "data.name must be string"),
        ("hello", {"id": 1, "ok": True}, "must contain"),
        ("apply", {"id": 1, "ok": True, "observation": {"fields": {"x": "y"}}}, "schema"),
        ("apply", {"id": 1, "ok": False}, "must contain"),
    ],
)
def test_a_response_that_breaks_the_schema_is_refused(
    op: str, response: dict[str, object], says: str
) -> None:
    with pytest.raises(InputError, match="breaks the protocol's schema") as caught:
        protocol.check_response(response, 1, "child, message 1", op)
    assert says in str(caught.value)


def test_a_valid_response_passes() -> None:
    protocol.check_response({"id": 1, "ok": True, "name": "impl"}, 1, "child", "hello")
    with pytest.raises(InputError, match="reports an error: nope"):
        protocol.check_response({"id": 1, "ok": False, "error": "nope"}, 1, "child", "apply")
