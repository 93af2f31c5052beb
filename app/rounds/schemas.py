"""Round and checkpoint shapes of the REST API (a public contract: extend, never rename)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.models import RoundStatus


class RoundSettings(BaseModel):
    """What an admin chooses when launching a round; stored as the round's config."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["ppo", "dpo"] = "dpo"
    # 80 DPO steps is what bench/loop.py needed for every built-in rule (bench/README.md);
    # a PPO iteration costs several DPO steps, so PPO rounds usually want fewer.
    policy_steps: int = Field(80, ge=1, le=10_000, description=(
        "PPO iterations, or DPO optimizer steps at most: a DPO round runs min(policy_steps, "
        "8 epochs of its training pairs in batches of 32); both stop earlier when the watch says so"))
    learning_rate: float = Field(1e-4, gt=0, le=1.0)
    kl_coef: float = Field(0.05, ge=0, le=10.0, description="PPO KL penalty, or DPO beta")
    kl_budget: float = Field(15.0, gt=0, le=10_000, description=(
        "nats per response: training stops, and the result is rejected, when the policy's KL to the "
        "checkpoint it started from, on held-out prompts, goes beyond it"))
    reward_model_epochs: int = Field(2, ge=1, le=100)
    lora_r: int | None = Field(None, ge=0, le=1024, description=(
        "LoRA rank for the policy and the reward model: 0 trains every weight and publishes a full checkpoint; "
        "null chooses (LoRA of rank 16 for models over 300M parameters, every weight below; a round from an "
        "adapter checkpoint trains its adapter on, at its own rank). A LoRA round publishes its adapter alone, "
        "naming the base model it adapts by content hash."))
    ratings: Literal["all", "since_last_round"] = Field(
        "all", description="which human ratings the round trains on")
    exclude_raters: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=1000, description=(
            "names of raters whose ratings this round leaves out, to see what they changed: the result is a "
            "checkpoint like any other, compared blind with the current one"))
    rater_weights: bool = Field(True, description=(
        "weigh each rater's ratings by their reliability (GET /raters), once enough items have two or more "
        "raters; false counts every rating the same"))
    seed: int = Field(0, ge=0, le=2**31 - 1)


class RoundCreated(BaseModel):
    id: int
    status: RoundStatus


class GateOut(BaseModel):
    """One gate a round's result had to pass (worker/gates.py)."""

    name: str
    value: float | None
    limit: str
    passed: bool
    detail: str = ""


class RoundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: RoundStatus
    algorithm: str
    config: dict
    base_checkpoint_id: int | None
    produced_checkpoint_id: int | None
    base_checkpoint_version: int | None = None
    produced_checkpoint_version: int | None = None
    error: str | None
    progress: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    ratings_used: int = 0
    gates: list[GateOut] = Field(default_factory=list, description="each gate with its value, limit and outcome")


class RoundDetail(RoundOut):
    log: str
    report: dict = Field(default_factory=dict, description=(
        "what actually ran: comparisons used, steps planned and run, why training stopped, "
        "held-out figures of the parent and the result, samples of both on the same prompts"))


class MetricPoint(BaseModel):
    id: int
    phase: str
    step: int
    name: str
    value: float


class ReviewOut(BaseModel):
    """The raters' blind comparisons of a candidate with the current checkpoint so far."""

    against_id: int
    wins: float = Field(description="decisive comparisons the candidate won")
    decisive: int
    ties: int
    win_rate: float | None = Field(description="wins among decisive comparisons")
    interval: tuple[float, float] = Field(description="95% Wilson interval of the win rate")
    needed: int = Field(description="decisive comparisons still needed before a verdict is possible")
    max_comparisons: int = Field(description="comparisons (ties included) after which an undecided candidate "
                                             "is dropped")


class CheckpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    name: str
    status: str = Field(description="candidate, current, ready, retired or rejected")
    status_reason: str = ""
    is_current: bool
    parent_id: int | None
    content_hash: str
    metrics: dict
    created_at: datetime
    win_rate: float | None = Field(None, description="human win rate against its parent, blind")
    win_rate_length_controlled: float | None = Field(None, description=(
        "the same at equal answer length: Bradley-Terry with a length term, as LMArena's style control"))
    strength: float | None = Field(None, description="Bradley-Terry strength (log-odds vs the first)")
    strength_interval: tuple[float, float] | None = None
    round_id: int | None = Field(None, description="the round that produced it")
    review: ReviewOut | None = Field(None, description="for a candidate: how the blind comparisons stand")
