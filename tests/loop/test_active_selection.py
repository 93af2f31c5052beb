"""Active selection: a source set to "uncertainty" offers the pair of K samples an ensemble of reward
heads, fitted on the ratings so far, disputes most ("contrast": its best and worst); a random share
stays random; each item records how its pair was chosen. What it buys in ratings is bench/loop.py's
to measure (bench/README.md, Active selection).

In-process on PostgreSQL with the tiny base model; ratings go through the services the API calls.
"""

import random

import pytest
from sqlalchemy import select

from app.db import session_scope
from app.feedback.leasing import lease_next_item
from app.feedback.ratings import RatingInput, submit_rating
from app.feedback.views import leased_item_view
from app.models import Item, ItemPurpose
from app.prompts.sources import SourceSettings, configure_source
from simulation.raters import answer_item
from simulation.rules import RULES
from tests.factories import make_user
from worker.pool import refill_pool

pytestmark = pytest.mark.slow


def rate_all(user_id: int, rule, rng: random.Random) -> int:
    done = 0
    while True:
        with session_scope() as db:
            leased = lease_next_item(db, user_id, rng=rng)
            if leased is None:
                return done
            submit_rating(db, user_id, RatingInput(**answer_item(rule, leased_item_view(leased).model_dump(
                mode="json"), 0.0, rng)))
        done += 1


def refill_as(db, settings: SourceSettings, seed: int, after: int) -> list[Item]:
    """Set the source's selection, refill the pool (48 items), and return the new training items."""
    configure_source(db, "builtin", settings)
    db.commit()
    assert refill_pool(seed=seed) == 48
    db.expire_all()
    return list(db.scalars(select(Item).where(Item.id > after, Item.purpose == ItemPurpose.train)
                           .order_by(Item.id)))


def test_uncertainty_selection_offers_the_disputed_pair(db, loop_state, monkeypatch):
    from tests.conftest import reset_app_caches

    monkeypatch.setenv("TUNELOOP_POOL_TARGET", "48")
    monkeypatch.setenv("TUNELOOP_PROGRESS_SHARE", "0")
    reset_app_caches()
    rule, rng = RULES["positive"], random.Random(0)
    rater = make_user(db, "carol")

    # No ratings yet: the first two samples are offered, and the item says why.
    first = refill_as(db, SourceSettings("uncertainty", random_share=0.0, candidates=4), seed=1, after=0)
    assert {i.selection["method"] for i in first} == {"random"}
    assert "selection needs 16" in first[0].selection["reason"]
    assert rate_all(rater.id, rule, rng) == 48

    # 48 comparisons rated: of the next items, the random share is drawn as before, the rest chosen.
    second = refill_as(db, SourceSettings("uncertainty", random_share=0.5, candidates=4), seed=2,
                       after=first[-1].id)
    methods = [i.selection["method"] for i in second]
    assert 12 <= methods.count("random") <= 36 and methods.count("uncertainty") == 48 - methods.count("random")
    chosen = [i for i in second if i.selection["method"] == "uncertainty"]
    assert all(i.selection["candidates"] == 4 and i.selection["comparisons"] == 48 for i in chosen)
    # The heads disagree more on some pairs than on others: the score is a measure, not a constant.
    assert len({i.selection["score"] for i in chosen}) > 1 and max(i.selection["score"] for i in chosen) > 0
    assert all(len(i.responses) == 2 and i.responses[0].sample.text for i in chosen)

    # Contrast: the heads' best and worst of the candidates, the gap between them recorded.
    assert rate_all(rater.id, rule, rng) == 48
    third = refill_as(db, SourceSettings("contrast", random_share=0.0, candidates=4), seed=3, after=second[-1].id)
    assert {i.selection["method"] for i in third} == {"contrast"}
    assert all(i.selection["score"] > 0 and i.selection["comparisons"] == 96 for i in third)
