"""Per-stage timers shared by the ingest pipeline and the benchmarks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StageTimes:
    """Seconds spent and items processed per stage (decode, detect, embed, write)."""

    seconds: dict[str, float] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float, items: int) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            self.items[stage] = self.items.get(stage, 0) + items

    @contextmanager
    def time(self, stage: str, items: int) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start, items)

    def rate(self, stage: str) -> float:
        """Items per second of busy time in a stage."""
        secs = self.seconds.get(stage, 0.0)
        return self.items.get(stage, 0) / secs if secs > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            s: {"seconds": round(self.seconds[s], 4), "items": self.items.get(s, 0),
                "per_second": round(self.rate(s), 2)}
            for s in self.seconds
        }
