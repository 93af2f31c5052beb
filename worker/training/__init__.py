"""The training core: plain torch + transformers, no database, no Celery.

Every algorithm takes a seed, reports each step to `on_metrics(step, metrics)`,
raises `TrainingCancelled` (leaving no checkpoint) when `should_stop()` turns
True, and publishes its checkpoint atomically as a plain Hugging Face
directory with a `tuneloop.json` beside the weights. DPO and PPO take an
optional watch (`watch.py`) that stops them before they break; when it kept
no step past the start, they publish nothing.
"""

from worker.training.base_model import BaseModelConfig, build_base_model
from worker.training.checkpoint_io import CheckpointError, content_hash, read_metadata, verify_checkpoint
from worker.training.corpus import CorpusPrompt, builtin_prompts
from worker.training.data import PreferencePair, TrainingCancelled, TrainResult
from worker.training.dpo import DPOConfig, run_dpo
from worker.training.generation import Generated, generate_responses
from worker.training.ppo import PPOConfig, run_ppo
from worker.training.reward_model import RewardModelConfig, RewardScorer, fit_reward_model

__all__ = [
    "BaseModelConfig",
    "CheckpointError",
    "CorpusPrompt",
    "DPOConfig",
    "Generated",
    "PPOConfig",
    "PreferencePair",
    "RewardModelConfig",
    "RewardScorer",
    "TrainResult",
    "TrainingCancelled",
    "build_base_model",
    "builtin_prompts",
    "content_hash",
    "fit_reward_model",
    "generate_responses",
    "read_metadata",
    "run_dpo",
    "run_ppo",
    "verify_checkpoint",
]
