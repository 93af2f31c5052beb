"""Active selection: which two of a prompt's samples a training item offers.

A prompt source set to "uncertainty" or "contrast" (app.prompts.sources)
samples K responses per prompt for all but its random share of training
items; this module fits an ensemble of reward heads
(worker.training.reward_heads) on the policy's features of the latest
comparisons rated, weighted as rounds weigh them, and offers the pair the
heads dispute most ("uncertainty": what the ratings have not settled), or
the heads' best and worst ("contrast": a clear difference for the rater to
confirm or correct). With too few comparisons to fit on (the first ratings of
a new deployment) the first two samples are offered, as random selection
would, and the item records why.
"""

import torch

from app.db import session_scope
from app.feedback.examples import comparisons_of, rating_rows
from app.feedback.reliability import rater_weights, reliabilities
from app.models import Checkpoint, Selection
from worker.checkpoint_models import model_ref
from worker.models_cache import loaded_policy
from worker.rated import training_examples
from worker.training.packing import encode_pairs
from worker.training.reward_heads import embed, fit_heads, most_contrasting_pair, most_disputed_pair
from worker.training.reward_model import RewardModelConfig
from worker.training.sequences import Prompt, encode_prompts

LATEST_RATINGS = 2000  # the heads are fitted on the comparisons these ratings make
MIN_COMPARISONS = 16  # fewer and the heads are noise: the first two samples are offered
HEADS = 5


def choose_pairs(checkpoint: Checkpoint, groups: list[tuple[Prompt, list[list[int]], Selection]],
                 seed: int) -> list[tuple[int, int, dict]]:
    """For each (prompt, its candidates' sampled token ids, how to choose), the positions of the two
    candidates to offer and the selection record the item keeps."""
    with session_scope() as db:
        path, base = model_ref(db, checkpoint)
        rows = rating_rows(db, "all", latest=LATEST_RATINGS)
        raters = {r.rater_id for r in rows}
        pairs, _ = training_examples(db, comparisons_of(rows, rater_weights(reliabilities(db), raters)))
    if len(pairs) < MIN_COMPARISONS:
        record = {"method": "random", "reason": f"{len(pairs)} comparisons rated; selection needs "
                                                f"{MIN_COMPARISONS}"}
        return [(0, 1, record) for _ in groups]
    with loaded_policy(path, base) as (model, tokenizer):
        triples = encode_pairs(tokenizer, pairs, RewardModelConfig.max_length)
        rated = embed(model, [p + c for p, c, _ in triples] + [p + r for p, _, r in triples], tokenizer.pad_token_id)
        prompt_ids = encode_prompts(tokenizer, [prompt for prompt, _, _ in groups])
        candidates = embed(model, [p + c for p, (_, group, _) in zip(prompt_ids, groups) for c in group],
                           tokenizer.pad_token_id)
    n = len(triples)
    heads = fit_heads(rated[:n], rated[n:], torch.tensor([0.5 if p.tie else 1.0 for p in pairs]),
                      torch.tensor([p.weight for p in pairs]), heads=HEADS, seed=seed)
    choices, start = [], 0
    for _, group, selection in groups:
        choose = most_contrasting_pair if selection == Selection.contrast else most_disputed_pair
        first, second, score = choose(heads, candidates[start : start + len(group)])
        start += len(group)
        choices.append((first, second, {"method": str(selection), "score": round(score, 4),
                                        "candidates": len(group), "heads": HEADS, "comparisons": n}))
    return choices
