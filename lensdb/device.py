"""Where models run and on how many threads, chosen on purpose in one place.

    device = resolve_device("auto")   # "cuda" when torch sees a GPU, else "mps", else "cpu"
    set_threads(None)                 # every core, whatever an import set before

`import ultralytics` sets OMP_NUM_THREADS=1 for the process; `set_threads` undoes that for
torch's own pools so an embedder does not run on one core of a large machine.
"""

from __future__ import annotations

import os
import re

from lensdb.errors import LensDBError

DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps (auto: a GPU when torch sees one)"


def _seen() -> str:
    import torch

    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return (f"torch {torch.__version__} sees {cuda} CUDA device(s)"
            f"{' and MPS' if mps else ''} (built for CUDA {torch.version.cuda or 'none'})")


def resolve_device(spec: str | None = "auto") -> str:
    """A torch device string for `spec`, or a one-line error naming what torch sees."""
    import torch

    text = (spec or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match:
        if not torch.cuda.is_available():
            raise LensDBError(f"device {spec}: no CUDA GPU here; {_seen()}; use cpu or auto")
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise LensDBError(f"device {spec}: no such GPU; {_seen()}")
        return f"cuda:{index}" if match.group(1) else "cuda"
    if text == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise LensDBError(f"device mps: not available; {_seen()}")
        return "mps"
    raise LensDBError(f"device '{spec}' is not one of {DEVICE_HELP}")


def model_device(requested: str | None, supported: tuple[str, ...], model: str) -> str:
    """The device one model runs on: `requested` resolved, or the CPU when the model cannot
    use it and the request was `auto`; an explicit request it cannot meet is an error."""
    device = resolve_device(requested)
    if device == "cpu" or device.split(":")[0] in supported:
        return device
    if (requested or "auto").strip().lower() == "auto":
        return "cpu"
    raise LensDBError(f"{model} runs on {', '.join(supported)} only, not {device}; "
                      "use device cpu or auto")


def uses_half(device: str) -> bool:
    """fp16 inference where it pays: CUDA only."""
    return device.startswith("cuda")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to `threads` (default: the cores); returns the number."""
    import torch

    n = cpu_count() if threads is None else int(threads)
    if n < 1:
        raise LensDBError("threads must be at least 1")
    torch.set_num_threads(n)
    return n
