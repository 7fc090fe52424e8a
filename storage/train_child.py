"""Train a FAISS codec in a child process: `python train_child.py FACTORY DIM PARENT_PID`.

The sample comes on stdin (`np.save` format), the trained index goes to stdout
(`faiss.serialize_index`). Run as a script by path (no `lensdb` import, no
multiprocessing, hence no resource tracker that could outlive a killed parent). The child
dies with its parent: PR_SET_PDEATHSIG on Linux, and on any system a thread that exits
once the parent pid changes (the parent died and the child was re-parented).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Arrange to be killed when `parent` exits; exits now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher below still works

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.2)

    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    factory, dim, parent = argv[0], int(argv[1]), int(argv[2])
    die_with_parent(parent)
    import faiss
    import numpy as np

    sample = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False)
    index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # FAISS k-means warns once per sub-quantiser from C++
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    sys.stdout.buffer.write(faiss.serialize_index(index).tobytes())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
