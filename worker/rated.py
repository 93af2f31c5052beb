"""Rated comparisons and thumbs as the training core takes them: each with its prompt, its
responses' text and, when generation sampled them, the token ids it sampled."""

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.feedback.examples import Comparison, Thumb
from app.models import Prompt, Sample
from worker.training.data import PreferencePair, UnaryExample
from worker.training.sequences import prompt_of

CHUNK = 1000  # ids per IN (...) list


def training_examples(db: Session, comparisons: list[Comparison],
                      thumbs: Iterable[Thumb] = ()) -> tuple[list[PreferencePair], list[UnaryExample]]:
    thumbs = list(thumbs)
    samples, prompts = {}, {}
    ids = sorted({s for c in comparisons for s in (c.chosen, c.rejected)} | {t.sample_id for t in thumbs})
    for start in range(0, len(ids), CHUNK):
        samples |= {row.id: row for row in db.execute(
            select(Sample.id, Sample.text, Sample.token_ids, Sample.tokenizer)
            .where(Sample.id.in_(ids[start : start + CHUNK])))}
    prompt_ids = sorted({c.prompt_id for c in comparisons} | {t.prompt_id for t in thumbs})
    for start in range(0, len(prompt_ids), CHUNK):
        prompts |= {prompt_id: prompt_of(text, messages) for prompt_id, text, messages in db.execute(
            select(Prompt.id, Prompt.text, Prompt.messages).where(Prompt.id.in_(prompt_ids[start : start + CHUNK])))}
    pairs = [_pair(prompts[c.prompt_id], samples[c.chosen], samples[c.rejected], c.tie, c.weight)
             for c in comparisons]
    unary = [UnaryExample(prompts[t.prompt_id], samples[t.sample_id].text, t.up,
                          tuple(samples[t.sample_id].token_ids) if samples[t.sample_id].token_ids else None,
                          samples[t.sample_id].tokenizer, t.weight) for t in thumbs]
    return pairs, unary


def _pair(prompt, chosen, rejected, tie: bool, weight: float) -> PreferencePair:
    """A comparison with the ids each response was sampled as, when both were sampled by one tokenizer."""
    same = chosen.token_ids is not None and rejected.token_ids is not None and chosen.tokenizer == rejected.tokenizer
    return PreferencePair(prompt, chosen.text, rejected.text, tie=tie, weight=weight,
                          chosen_ids=tuple(chosen.token_ids) if same else None,
                          rejected_ids=tuple(rejected.token_ids) if same else None,
                          tokenizer=chosen.tokenizer if same else "")
