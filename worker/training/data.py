"""Plain records passed into and out of the training core."""

import math
from dataclasses import dataclass, field
from pathlib import Path

from worker.training.sequences import Prompt


@dataclass(frozen=True)
class PreferencePair:
    prompt: Prompt  # plain text, or a conversation ((role, content), ...) ending with a user turn
    chosen: str
    rejected: str
    # A tie says the two responses are equally good; `chosen`/`rejected` are then arbitrary.
    tie: bool = False
    # The token ids generation sampled for each response (end token included), and the
    # fingerprint of the tokenizer they belong to: training uses exactly these ids when the
    # policy's tokenizer is that one, and tokenizes the text otherwise (client responses).
    chosen_ids: tuple[int, ...] | None = None
    rejected_ids: tuple[int, ...] | None = None
    tokenizer: str = ""
    # How much this comparison counts in the loss, relative to the others (its rater's reliability).
    weight: float = 1.0


@dataclass(frozen=True)
class UnaryExample:
    """One response judged on its own: a thumb up (`good`) or down."""

    prompt: Prompt
    response: str
    good: bool
    response_ids: tuple[int, ...] | None = None  # as sampled, with `tokenizer` its fingerprint
    tokenizer: str = ""
    weight: float = 1.0

    def as_pair(self) -> PreferencePair:
        """The response against itself: how the reward model's batching reads one response."""
        return PreferencePair(self.prompt, self.response, self.response, chosen_ids=self.response_ids,
                              rejected_ids=self.response_ids, tokenizer=self.tokenizer, weight=self.weight)


def steps_per_epoch(pairs: int, eval_fraction: float, batch_size: int) -> int:
    """Optimiser steps of one pass over `pairs` comparisons once the held-out share is set aside.

    Both trainers hold out int(pairs * eval_fraction) of the shuffled pairs.
    """
    return math.ceil((pairs - int(pairs * eval_fraction)) / batch_size)


@dataclass
class TrainResult:
    # None when a watch kept no step past the start: nothing was saved.
    out_dir: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    # What the watch saw (worker.training.watch.PolicyWatch.report), when one watched.
    report: dict = field(default_factory=dict)


class TrainingCancelled(Exception):
    """Raised when `should_stop()` returned True; no checkpoint was written."""
