"""Progress events: small typed records that long operations emit and that the CLI (rich
bars) and the service (job status) both consume. They pickle, so they cross processes.

    def on_event(event: Event) -> None:
        match event:
            case VideoStarted(name=name, total=total): ...
            case FramesDone(n=n): ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class VideoStarted:
    """Decoding of one source began."""

    name: str  # the name shown for the video
    total: int | None  # frames expected to be kept, None when unknown (live, stdin)
    done: int = 0  # frames already stored from an earlier run (resume)


@dataclass(frozen=True)
class FramesDone:
    """A batch of frames was committed (or is in flight to the writer)."""

    n: int


@dataclass(frozen=True)
class VideoFinished:
    """A source ended: complete, partial, stopped, skipped or failed."""

    name: str
    status: str  # complete | partial | stopped | skipped | failed
    message: str | None = None  # why, for anything but complete


@dataclass(frozen=True)
class TaskProgress:
    """A step of a task that is not frame by frame (training epochs, label runs)."""

    task: str  # what is being done, e.g. "person: mlp"
    done: int
    total: int


Event = VideoStarted | FramesDone | VideoFinished | TaskProgress
OnEvent = Callable[[Event], None]


def to_dict(event: Event) -> dict:
    """JSON-able form with its kind, for logs and the HTTP API."""
    return {"kind": type(event).__name__, **asdict(event)}


def ignore(event: Event) -> None:
    """The default listener."""
