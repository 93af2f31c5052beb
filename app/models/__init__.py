"""ORM models, one module per table; importing this package registers them all."""

from app.models.base import Base, utcnow
from app.models.checkpoint import Checkpoint, CheckpointStatus
from app.models.guideline import Guideline
from app.models.item import Item, ItemKind, ItemPurpose, ItemResponse, Lease
from app.models.node_job import NodeJob
from app.models.pool_reservation import PoolReservation
from app.models.prompt import Prompt
from app.models.prompt_source import PromptSource, Selection
from app.models.rating import Rating, Verdict
from app.models.sample import Sample
from app.models.training_round import (
    Algorithm,
    RoundMetric,
    RoundRating,
    RoundStatus,
    TrainingRound,
)
from app.models.user import ApiToken, Role, User

__all__ = [
    "Algorithm",
    "ApiToken",
    "Base",
    "Checkpoint",
    "CheckpointStatus",
    "Guideline",
    "Item",
    "ItemKind",
    "ItemPurpose",
    "ItemResponse",
    "Lease",
    "NodeJob",
    "PoolReservation",
    "Prompt",
    "PromptSource",
    "Rating",
    "Role",
    "RoundMetric",
    "RoundRating",
    "RoundStatus",
    "Sample",
    "Selection",
    "TrainingRound",
    "User",
    "Verdict",
    "utcnow",
]
