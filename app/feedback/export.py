"""Ratings as JSONL that Hugging Face TRL and `datasets` read, streamed in flat memory.

Preferences: one row per (chosen, rejected) pair, TRL's standard preference
format (`prompt`, `chosen`, `rejected` as plain text) plus provenance columns;
or its conversational format on request: `prompt` the conversation as a list
of messages (a plain prompt is one user turn), `chosen` and `rejected` each a
list holding the assistant's message.
Which pairs a rating makes is app.feedback.examples' rule, the one rounds train
by: a "preferred" verdict on an item of n responses gives n-1 pairs (the
preferred one against each other); "tie" and "both bad" say neither is better,
so they are left out unless asked for: then every two responses shown are a
row with `tie: true`, and `verdict` tells a tie from a both-bad.

Scores: one row per scored response (`prompt`, `response`, `score`, provenance).

Thumbs: one row per thumb, TRL's unpaired preference (KTO) format: `prompt`,
`completion` and `label` (true for up), plain text or, on request,
conversational (`prompt` the messages, `completion` the assistant's message).
"""

import json
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import get_sessionmaker
from app.feedback.examples import verdict_pairs
from app.feedback.listing import RatingFilter
from app.models import Item, Prompt, Rating, Sample, User, Verdict

BATCH = 500


def _batches(db: Session, where: RatingFilter, verdicts: list[Verdict] | None):
    """(rows, sample texts) BATCH ratings at a time, each batch in a short transaction
    of its own: memory stays flat, and a slow download holds no snapshot or lock
    (on SQLite every transaction takes the write lock, see app.db)."""
    query = (
        select(Rating.id, Rating.user_id, User.name.label("rater"), Rating.item_id, Rating.verdict,
               Rating.preferred_sample_id, Rating.scores, Rating.thumb, Rating.provenance, Rating.created_at,
               Prompt.text.label("prompt"), Prompt.messages)
        .join(User, User.id == Rating.user_id)
        .join(Item, Item.id == Rating.item_id)
        .join(Prompt, Prompt.id == Item.prompt_id)
        .order_by(Rating.id)
        .limit(BATCH)
    )
    if verdicts is not None:
        query = query.where(Rating.verdict.in_(verdicts))
    query = where.apply(query)
    after = 0
    while True:
        rows = db.execute(query.where(Rating.id > after)).all()
        ids = {p["sample_id"] for row in rows for p in row.provenance}
        texts = dict(db.execute(select(Sample.id, Sample.text).where(Sample.id.in_(ids))).tuples().all()
                     ) if ids else {}
        db.rollback()  # read only: end the transaction before the client reads
        if rows:
            yield rows, texts
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def _provenance(row) -> dict:
    return {"rating_id": row.id, "rater": row.rater, "rater_id": row.user_id,
            "item_id": row.item_id, "created_at": row.created_at.isoformat()}


def _conversation(row, *answers: str) -> tuple:
    """The prompt as a list of messages (a plain prompt is one user turn), and each answer as a
    list holding the assistant's message: TRL's conversational formats."""
    return (row.messages or [{"role": "user", "content": row.prompt}],
            *([{"role": "assistant", "content": answer}] for answer in answers))


def _pair(row, chosen: dict, rejected: dict, texts: dict[int, str], tie: bool, conversational: bool) -> dict:
    """One exported row: the pair, and the provenance of each side."""
    prompt, better, worse = row.prompt, texts[chosen["sample_id"]], texts[rejected["sample_id"]]
    if conversational:
        prompt, better, worse = _conversation(row, better, worse)
    return {"prompt": prompt, "chosen": better, "rejected": worse, "tie": tie, "verdict": str(row.verdict),
            **_provenance(row),
            "chosen_sample_id": chosen["sample_id"], "rejected_sample_id": rejected["sample_id"],
            "chosen_checkpoint_id": chosen.get("checkpoint_id"),
            "rejected_checkpoint_id": rejected.get("checkpoint_id")}


def preference_rows(db: Session, where: RatingFilter, include_ties: bool = False,
                    conversational: bool = False) -> Iterator[list[dict]]:
    verdicts = [Verdict.preferred, Verdict.tie, Verdict.both_bad] if include_ties else [Verdict.preferred]
    for batch, texts in _batches(db, where, verdicts):
        out = []
        for row in batch:
            shown = {p["sample_id"]: p for p in row.provenance}
            out += [_pair(row, shown[better], shown[worse], texts, tie, conversational)
                    for better, worse, tie in verdict_pairs(row.verdict, row.preferred_sample_id, shown)]
        yield out


def score_rows(db: Session, where: RatingFilter) -> Iterator[list[dict]]:
    for batch, texts in _batches(db, where, None):
        out = []
        for row in batch:
            if not row.scores:
                continue
            for shown in row.provenance:
                score = row.scores.get(str(shown["sample_id"]))
                if score is None:
                    continue
                out.append({"prompt": row.prompt, "response": texts[shown["sample_id"]],
                            "score": score, **_provenance(row), "sample_id": shown["sample_id"],
                            "checkpoint_id": shown.get("checkpoint_id"),
                            "source": shown.get("source") or ""})
        yield out


def kto_rows(db: Session, where: RatingFilter, conversational: bool = False) -> Iterator[list[dict]]:
    for batch, texts in _batches(db, where, None):
        out = []
        for row in batch:
            if row.thumb is None:
                continue
            [shown] = row.provenance
            prompt, completion = row.prompt, texts[shown["sample_id"]]
            if conversational:
                prompt, completion = _conversation(row, completion)
            out.append({"prompt": prompt, "completion": completion, "label": row.thumb == "up",
                        **_provenance(row), "sample_id": shown["sample_id"],
                        "checkpoint_id": shown.get("checkpoint_id")})
        yield out


def stream_jsonl(rows_of, where: RatingFilter, **options) -> Iterator[bytes]:
    """JSONL bytes, a batch at a time, on a session of its own: the response
    outlives the request's session, which commits before streaming starts."""
    db = get_sessionmaker()()
    try:
        for rows in rows_of(db, where, **options):
            if rows:
                yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    finally:
        db.close()
