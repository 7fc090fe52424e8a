"""Device choice: auto picks what torch sees; asking for what is not there is one clear line."""

from __future__ import annotations

import pytest
import torch

from lensdb.device import resolve_device, set_threads, uses_half
from lensdb.errors import LensDBError


def test_auto_and_cpu():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else
                                      resolve_device("auto"))
    assert not uses_half("cpu") and uses_half("cuda:0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_where_there_is_none_names_what_torch_sees():
    for spec in ("cuda", "cuda:1", "CUDA:0"):
        with pytest.raises(LensDBError, match="sees 0 CUDA device"):
            resolve_device(spec)


def test_unknown_devices_and_threads():
    for spec in ("gpu", "cuda:x", "tpu"):
        with pytest.raises(LensDBError, match="not one of"):
            resolve_device(spec)
    with pytest.raises(LensDBError):
        set_threads(0)
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
