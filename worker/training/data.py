"""Plain records passed into and out of the training core."""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    # A tie says the two responses are equally good; `chosen`/`rejected` are then arbitrary.
    tie: bool = False


@dataclass
class TrainResult:
    # None when a watch kept no step past the start: nothing was saved.
    out_dir: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    # What the watch saw (worker.training.watch.PolicyWatch.report), when one watched.
    report: dict = field(default_factory=dict)


class TrainingCancelled(Exception):
    """Raised when `should_stop()` returned True; no checkpoint was written."""
