"""One typed settings object, read from `TUNELOOP_*` environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-secret-change-me"
EMBEDDED_BROKER = "embedded"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TUNELOOP_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///./var/tuneloop.db"
    # PostgreSQL connections each process keeps, and so the requests a web process works on
    # at once (app.middleware.DatabaseConcurrency). A process computes on one core at a time
    # (the GIL): a few requests cover its waits on a local database, and more only make
    # their threads contend for the interpreter. A distant database may want more.
    db_pool_size: int = Field(3, ge=1)
    # "embedded" means kombu's SQLAlchemy transport on a SQLite file under var_dir,
    # so the demo needs no Redis; production sets redis://...
    broker_url: str = EMBEDDED_BROKER
    # A local or shared directory, or an object-store URL such as s3://bucket/prefix
    # (app.checkpoints.store says what each means).
    checkpoint_dir: Path | str = Path("./var/checkpoints")
    var_dir: Path = Path("./var")
    secret_key: str = DEVELOPMENT_SECRET

    lease_seconds: int = 600
    default_overlap: int = 1
    max_body_bytes: int = 2_000_000
    max_text_chars: int = 20_000
    api_rate_per_minute: int = 6000
    login_attempts_per_minute: int = 10
    # Serve cookies with the Secure flag; set when behind TLS.
    secure_cookies: bool = False

    # The sample pool: open items kept ready per prompt source, and the sampling settings.
    pool_target: int = 64
    pool_overlap: int = 1
    # A generation worker's reservation of the items it is sampling ends after this long even
    # if the worker lives on (worker.pool_reservation); on PostgreSQL it ends with a dead worker.
    pool_reservation_seconds: int = 600
    # Share of new items that compare the current checkpoint with its parent (blind).
    progress_share: float = 0.25
    generation_max_new_tokens: int = 40
    generation_temperature: float = 1.0
    # Which engine samples the pool (worker/engines.py): "auto" is vLLM when it is installed and a
    # GPU is present, else the in-process sampler.
    generation_engine: Literal["auto", "in_process", "vllm"] = "auto"
    # A running round whose worker has not beaten for this long is failed.
    round_heartbeat_timeout_seconds: int = 90
    # Automatic rounds (off when 0): every N new ratings and/or every M minutes.
    auto_round_every_ratings: int = 0
    auto_round_every_minutes: int = 0
    auto_round_algorithm: Literal["ppo", "dpo"] = "dpo"
    # Training precision: "auto" is bfloat16 on GPUs that compute in it natively, float32 elsewhere
    # (weights and optimiser state stay float32 either way; bf16 is autocast).
    train_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    # Memory a round may plan to use, in GiB (0: the device's free memory). A round whose estimate
    # (worker/training/devices.py) exceeds it fails at once, saying what it needed.
    train_memory_gib: float = 0.0
    # Gradient checkpointing: recompute activations in the backward pass instead of keeping them
    # (about a third more compute, activation memory of one layer). "auto": on above 300M parameters.
    train_gradient_checkpointing: Literal["auto", "on", "off"] = "auto"
    # Processes a round trains on, on each machine: 1 on one machine trains in the worker's own process;
    # otherwise torchrun starts them (worker/training/launch.py), one per GPU, or CPU processes over gloo.
    train_processes: int = Field(1, ge=1)
    # Machines a round trains on, each with train_processes processes. Above 1 the training worker is
    # node 0 of a torchrun rendezvous it holds at train_master (`host:port` of its machine, reachable
    # from the others), and `tuneloop train-node --node-rank K` on each other machine joins its jobs
    # (worker/train_node.py). A job that not every node joins within the timeout fails its round.
    train_nodes: int = Field(1, ge=1)
    train_master: str = ""
    train_rendezvous_timeout_seconds: int = Field(300, ge=1)
    # How those processes hold the models (worker/training/distributed.py): "ddp", each whole;
    # "fsdp", each 1/N of every weight; "auto", DDP when the memory estimate fits a device whole,
    # FSDP when it fits only sharded.
    train_sharding: Literal["auto", "ddp", "fsdp"] = "auto"
    # A round needs at least this many decisive comparisons (a preferred answer, or two
    # different scores for one prompt) among the ratings it would use; fewer cannot fit
    # a reward model or a policy that generalises, and is refused at launch.
    min_round_comparisons: int = 32
    # What a round's result becomes (app.checkpoints.review):
    #   review    - a candidate; current once raters prefer it blind (the 95% interval of
    #               its win rate against the current checkpoint lies above 50%)
    #   gates     - current as soon as its gates pass
    #   immediate - current at once; the gates are still measured and shown, not enforced
    promotion: Literal["review", "gates", "immediate"] = "review"
    # While a candidate is under review, this share of new items compares it with the
    # current checkpoint (blind); the rest are the current model's training pairs.
    review_share: float = 0.5
    # No verdict either way after this many comparisons: the candidate is dropped.
    review_max_comparisons: int = 200

    @field_validator("checkpoint_dir", mode="before")
    @classmethod
    def _path_or_url(cls, value: Path | str) -> Path | str:
        """A URL stays a string: as a Path, `s3://bucket` would become `s3:/bucket`."""
        return str(value) if "://" in str(value) else Path(value)

    @model_validator(mode="after")
    def _master_for_several_nodes(self) -> "Settings":
        host, _, port = self.train_master.rpartition(":")
        if self.train_nodes > 1 and not (host and port.isdigit()):
            raise ValueError("TUNELOOP_TRAIN_NODES above 1 needs TUNELOOP_TRAIN_MASTER: host:port of the "
                             "training worker's machine, reachable from the other nodes")
        return self

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "Settings":
        if self.env != "development" and self.secret_key == DEVELOPMENT_SECRET:
            raise ValueError(
                "TUNELOOP_SECRET_KEY must be set outside development "
                "(TUNELOOP_ENV=production)"
            )
        return self

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url == EMBEDDED_BROKER


@lru_cache
def get_settings() -> Settings:
    return Settings()
