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


@dataclass(frozen=True)
class ScoredResponse:
    prompt: str
    response: str
    # A rater's score, e.g. on a 1..7 scale; only differences within a prompt are used.
    score: float


@dataclass
class TrainResult:
    out_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)


class TrainingCancelled(Exception):
    """Raised when `should_stop()` returned True; no checkpoint was written."""
