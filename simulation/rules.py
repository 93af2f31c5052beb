"""Hidden preference rules for simulated raters and benchmarks.

Each rule scores a (prompt, response) pair; a simulated rater prefers the
response with the higher score. Before any rule, a rater prefers a fluent
response to a degenerate one (empty, looping, one word again and again:
worker.training.degeneration), as people do whatever they were asked to look for.
The web-side simulator imports this module, so it stays pure Python: no
torch, no transformers. Its words are the training corpus's
(worker/training/corpus.py), so that a base model pretrained on that corpus
sometimes satisfies each rule.
"""

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from worker.training.corpus import COLOURS, NEGATIVE_WORDS, POSITIVE_WORDS, TOPICS
from worker.training.degeneration import is_degenerate

Preference = Literal["a", "b", "tie"]

# A response of at most this many words counts as "short".
SHORT_RESPONSE_WORDS = 8

_WORD = re.compile(r"[a-z]+")


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def topic_of(prompt: str) -> str | None:
    """The first known topic named in the prompt, or None."""
    for word in words_of(prompt):
        if word in TOPICS:
            return word
    return None


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    score: Callable[[str, str], float]
    # A response satisfies the rule when its score exceeds this threshold.
    threshold: float


def _positivity(prompt: str, response: str) -> float:
    words = words_of(response)
    return float(
        sum(w in POSITIVE_WORDS for w in words) - sum(w in NEGATIVE_WORDS for w in words)
    )


def _brevity(prompt: str, response: str) -> float:
    return -float(len(words_of(response)))


def _on_topic(prompt: str, response: str) -> float:
    topic = topic_of(prompt)
    return float(topic is not None and topic in words_of(response))


def _colourfulness(prompt: str, response: str) -> float:
    return float(any(w in COLOURS for w in words_of(response)))


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("positive", "prefers positive wording", _positivity, 0.0),
        Rule("shorter", "prefers shorter answers", _brevity, -SHORT_RESPONSE_WORDS - 0.5),
        Rule("topic", "prefers answers that mention the prompt's topic", _on_topic, 0.5),
        Rule("colour", "prefers answers that mention a colour", _colourfulness, 0.5),
    )
}


def _resolve(rule: Rule | str) -> Rule:
    return RULES[rule] if isinstance(rule, str) else rule


def satisfaction(rule: Rule | str, prompt: str, response: str) -> bool:
    """Whether a response satisfies the rule; a degenerate response satisfies none."""
    rule = _resolve(rule)
    return rule.score(prompt, response) > rule.threshold and not is_degenerate(response)


def prefer(
    rule: Rule | str,
    prompt: str,
    a: str,
    b: str,
    noise: float = 0.0,
    rng: random.Random | None = None,
) -> Preference:
    """A simulated rater's answer: the fluent response over a degenerate one, else the
    higher-scoring response by the rule, "tie" when equal.

    With probability `noise` the rater answers "a" or "b" at random instead,
    like a human who misread or clicked carelessly.
    """
    rule = _resolve(rule)
    rng = rng or random.Random()
    if noise > 0 and rng.random() < noise:
        return rng.choice(("a", "b"))
    broken_a, broken_b = is_degenerate(a), is_degenerate(b)
    if broken_a != broken_b:
        return "b" if broken_a else "a"
    score_a, score_b = rule.score(prompt, a), rule.score(prompt, b)
    if score_a == score_b:
        return "tie"
    return "a" if score_a > score_b else "b"
