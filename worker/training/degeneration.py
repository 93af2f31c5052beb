"""How degenerate generated text is: loops inside a response, and sameness across responses.

Pure Python on purpose: the training watch measures a policy with it, the
round's gates compare a result with its parent by it, and simulated raters
(which never import torch) use it to prefer a fluent answer, as people do.

Measured on tokens: lower-cased words (runs of letters and digits) and each
punctuation mark on its own, so that "........" is eight tokens, not none.

- *repetition* of one response: the share of its token bigrams that repeat an
  earlier bigram of the same response (Welleck et al. 2019's seq-rep-n with
  n = 2). "the cat sat on the mat" has none; "the the the the" has 2/3.
- a response is *degenerate* when it is empty, repeats itself (repetition of
  at least `LOOP_REPETITION` over at least `LOOP_MIN_BIGRAMS` bigrams), or
  says one token `RUN_LENGTH` times in a row ("the the the the", "....").
- *distinct-2* of a set of responses: distinct bigrams over all bigrams
  (Li et al. 2016), each response framed by start and end marks so that
  one-word answers count too. A policy that answers every prompt alike has
  a low distinct-2 whatever each answer looks like.
- *length* in words, punctuation left out.
- *unfinished*: the share of responses cut off at the length limit before the
  model ended them, when the caller knows (generation does; text alone not).
"""

import re
from dataclasses import asdict, dataclass

_TOKEN = re.compile(r"\w+|[^\w\s]")
LOOP_REPETITION = 0.5
LOOP_MIN_BIGRAMS = 4
RUN_LENGTH = 4


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def word_count(text: str) -> int:
    return sum(token[0].isalnum() or token[0] == "_" for token in tokens(text))


def repetition(text: str) -> float:
    """Share of the response's token bigrams that repeat an earlier one (0 for under two bigrams)."""
    bigrams = list(zip(*(tokens(text)[i:] for i in range(2))))
    if len(bigrams) < 2:
        return 0.0
    return 1.0 - len(set(bigrams)) / len(bigrams)


def longest_run(sequence: list[str]) -> int:
    """The longest stretch of one token said again and again."""
    longest = run = 0
    for i, token in enumerate(sequence):
        run = run + 1 if i and token == sequence[i - 1] else 1
        longest = max(longest, run)
    return longest


def is_degenerate(text: str) -> bool:
    sequence = tokens(text)
    if not sequence:
        return True
    looping = len(sequence) - 1 >= LOOP_MIN_BIGRAMS and repetition(text) >= LOOP_REPETITION
    return looping or longest_run(sequence) >= RUN_LENGTH


def distinct_2(texts: list[str]) -> float:
    framed = [["<s>", *tokens(text), "</s>"] for text in texts]
    bigrams = [pair for sequence in framed for pair in zip(sequence, sequence[1:])]
    return len(set(bigrams)) / len(bigrams) if bigrams else 0.0


@dataclass(frozen=True)
class SampleStats:
    """Degeneration of a set of responses, e.g. a policy's samples on held-out prompts."""

    samples: int
    degenerate: float  # share of responses that are degenerate
    repetition: float  # mean repetition
    distinct_2: float
    mean_words: float
    unfinished: float = 0.0  # share cut off before the model ended them

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def sample_stats(texts: list[str], ended: list[bool] | None = None) -> SampleStats:
    n = max(len(texts), 1)
    return SampleStats(
        samples=len(texts),
        degenerate=sum(map(is_degenerate, texts)) / n,
        repetition=sum(map(repetition, texts)) / n,
        distinct_2=distinct_2(texts),
        mean_words=sum(map(word_count, texts)) / n,
        unfinished=(len(ended) - sum(ended)) / n if ended else 0.0,
    )


# How far a tuned policy's samples may drift from its parent's on the same
# prompts before the drift counts as breakage rather than learning.
MAX_EXTRA_DEGENERATE = 0.05  # share of degenerate responses above the parent's
MAX_EXTRA_UNFINISHED = 0.1  # share of responses cut off at the length limit above the parent's
MIN_DISTINCT_RATIO = 0.6  # distinct-2 relative to the parent's
LENGTH_RATIO = (0.25, 4.0)  # mean words relative to the parent's


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: str
    passed: bool


def against_parent(candidate: SampleStats, parent: SampleStats) -> list[Check]:
    """The degeneration checks of a policy's samples against its parent's on the same prompts."""
    ratio = candidate.distinct_2 / parent.distinct_2 if parent.distinct_2 else 1.0
    low, high = LENGTH_RATIO
    length = candidate.mean_words / parent.mean_words if parent.mean_words else 1.0
    limit = parent.degenerate + MAX_EXTRA_DEGENERATE
    return [
        Check("degenerate_share", candidate.degenerate, f"<= {limit:.3g} (parent {parent.degenerate:.3g} "
              f"+ {MAX_EXTRA_DEGENERATE})", candidate.degenerate <= limit),
        Check("distinct_2_ratio", ratio, f">= {MIN_DISTINCT_RATIO} of the parent's ({parent.distinct_2:.3g})",
              ratio >= MIN_DISTINCT_RATIO),
        Check("length_ratio", length, f"{low}..{high} of the parent's ({parent.mean_words:.3g} words)",
              low <= length <= high),
        Check("unfinished_share", candidate.unfinished, f"<= {parent.unfinished + MAX_EXTRA_UNFINISHED:.3g} "
              f"(parent {parent.unfinished:.3g} + {MAX_EXTRA_UNFINISHED})",
              candidate.unfinished <= parent.unfinished + MAX_EXTRA_UNFINISHED),
    ]
