"""Round and checkpoint shapes of the REST API (a public contract: extend, never rename)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import RoundStatus


class RoundSettings(BaseModel):
    """What an admin chooses when launching a round; stored as the round's config."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["ppo", "dpo"] = "dpo"
    # 80 DPO steps is what bench/loop.py needed for every built-in rule (bench/README.md);
    # a PPO iteration costs several DPO steps, so PPO rounds usually want fewer.
    policy_steps: int = Field(80, ge=1, le=10_000, description="PPO iterations or DPO optimizer steps")
    learning_rate: float = Field(1e-4, gt=0, le=1.0)
    kl_coef: float = Field(0.05, ge=0, le=10.0, description="PPO KL penalty, or DPO beta")
    reward_model_epochs: int = Field(2, ge=1, le=100)
    ratings: Literal["all", "since_last_round"] = Field(
        "all", description="which human ratings the round trains on")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class RoundCreated(BaseModel):
    id: int
    status: RoundStatus


class RoundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: RoundStatus
    algorithm: str
    config: dict
    base_checkpoint_id: int | None
    produced_checkpoint_id: int | None
    error: str | None
    progress: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    ratings_used: int = 0


class RoundDetail(RoundOut):
    log: str


class MetricPoint(BaseModel):
    id: int
    phase: str
    step: int
    name: str
    value: float


class CheckpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    name: str
    status: str
    is_current: bool
    parent_id: int | None
    content_hash: str
    metrics: dict
    created_at: datetime
    win_rate: float | None = Field(None, description="human win rate against its parent, blind")
    strength: float | None = Field(None, description="Bradley-Terry strength (log-odds vs the first)")
    strength_interval: tuple[float, float] | None = None
