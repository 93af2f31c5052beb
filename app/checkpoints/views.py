"""Checkpoints as the API and the dashboard show them: status and why, lineage, the round
that made each, human win rates and strengths, and a candidate's review so far."""

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.checkpoints.review import MIN_COMPARISONS, decide
from app.checkpoints.service import current_checkpoint
from app.checkpoints.win_rate import fit_strengths, head_to_head
from app.models import Checkpoint, CheckpointStatus, TrainingRound
from app.rounds.schemas import CheckpointOut, ReviewOut
from app.settings import get_settings


def checkpoint_views(db: Session, checkpoints: list[Checkpoint], games: list) -> list[CheckpointOut]:
    if not checkpoints:
        return []
    anchor = min(c.id for c in checkpoints)
    strengths = fit_strengths(games, anchor)
    at_equal_length = fit_strengths(games, anchor, length_control=True)
    produced_by = dict(db.execute(select(TrainingRound.produced_checkpoint_id, TrainingRound.id)
                                  .where(TrainingRound.produced_checkpoint_id.in_([c.id for c in checkpoints])))
                       .tuples().all())
    current = current_checkpoint(db)
    max_games = get_settings().review_max_comparisons
    views = []
    for checkpoint in checkpoints:
        view = CheckpointOut.model_validate(checkpoint)
        view.round_id = produced_by.get(checkpoint.id)
        if checkpoint.parent_id is not None:
            view.win_rate = head_to_head(games, checkpoint.id, checkpoint.parent_id).rate
            child, parent = at_equal_length.get(checkpoint.id), at_equal_length.get(checkpoint.parent_id)
            if view.win_rate is not None and child is not None and parent is not None:
                view.win_rate_length_controlled = 1 / (1 + math.exp(parent.theta - child.theta))
        strength = strengths.get(checkpoint.id)
        if strength is not None:
            view.strength, view.strength_interval = strength.theta, (strength.low, strength.high)
        if checkpoint.status == CheckpointStatus.candidate and current is not None:
            review = decide(head_to_head(games, checkpoint.id, current.id), max_games)
            view.review = ReviewOut(against_id=current.id, wins=review.wins, decisive=review.decisive,
                                    ties=review.ties, win_rate=review.win_rate, interval=(review.low, review.high),
                                    needed=max(0, MIN_COMPARISONS - review.decisive), max_comparisons=max_games)
        views.append(view)
    return views
