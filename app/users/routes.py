"""/api/v1/raters: each rater's volume, agreement with others and reliability (admins)."""

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.admin.rater_stats import rater_stats
from app.api.responses import errors
from app.deps import CurrentAdmin, SessionDep

router = APIRouter(prefix="/raters", tags=["raters"])


class RaterOut(BaseModel):
    name: str
    ratings: int
    agreement: float | None = Field(description="share of rater pairs on shared items that gave the same answer")
    reliability: float | None = Field(description=(
        "estimated probability that this rater's answer is the right one (one-coin Dawid-Skene over items "
        "two or more raters answered); null until there is enough overlap"))
    reliability_interval: tuple[float, float] | None = Field(description="95% Wilson interval of the reliability")
    flagged: bool = Field(description="far below the rest: the interval lies wholly below the median of the "
                                      "other raters' lower ends, and the estimate 10 points or more below theirs")
    weight: float | None = Field(description="what a round's training loss weighs this rater's ratings by, 2p - 1")
    gold_items: int = Field(description="gold items (right answer known) this rater answered")
    gold_accuracy: float | None = Field(description="share of those answered right; null with none")


@router.get("", response_model=list[RaterOut], responses=errors(403))
def list_raters(db: SessionDep, _: CurrentAdmin) -> list[RaterOut]:
    """Every user who rates or could, most ratings first."""
    return [RaterOut(name=r.name, ratings=r.ratings, agreement=r.agreement, reliability=r.reliability.accuracy,
                     reliability_interval=r.reliability.interval, flagged=r.reliability.flagged,
                     weight=r.reliability.weight, gold_items=r.gold_items, gold_accuracy=r.gold_accuracy)
            for r in rater_stats(db).raters]
