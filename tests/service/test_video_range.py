"""GET /videos/{id}/file: a bad Range header is a JSON error like every other one."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from lensdb.errors import LensDBError
from lensdb.service.routes.timeline import _check_range


@pytest.mark.parametrize("header", [None, "", "bytes=0-", "bytes=0-99", "bytes=-100",
                                    "bytes=0-9, 20-29", "bytes=999-"])
def test_ranges_a_player_sends_pass(header):
    _check_range(header, 1000)


@pytest.mark.parametrize("header, says", [("garbage", "expected bytes=START-END"),
                                          ("bytes=5-1", "'5-1' is not a byte range"),
                                          ("bytes=-", "is not a byte range")])
def test_malformed_ranges_are_400(header, says):
    with pytest.raises(LensDBError, match=says):
        _check_range(header, 1000)


def test_a_range_past_the_end_is_416_with_the_size():
    with pytest.raises(HTTPException) as info:
        _check_range("bytes=5000-", 1000)
    assert info.value.status_code == 416 and info.value.headers == {
        "Content-Range": "bytes */1000"}
