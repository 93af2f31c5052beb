"""The training core: plain torch + transformers, no database, no Celery.

Every algorithm takes a seed, reports each step to `on_metrics(step, metrics)`,
raises `TrainingCancelled` (leaving no checkpoint) when `should_stop()` turns
True, and publishes its checkpoint atomically as a plain Hugging Face
directory with a `tuneloop.json` beside the weights. DPO and PPO take an
optional watch (`watch.py`) that stops them before they break; when it kept
no step past the start, they publish nothing. Each also trains data-parallel
on the processes torchrun starts (`distributed.py`; `launch.py` starts them).
"""

import importlib

# What each public name lives in. Imported on first use (PEP 562), so that the
# pure-Python modules here load without torch: the simulated raters read corpus and
# degeneration, the checkpoint store (app.checkpoints.store) checkpoint_files.
_EXPORTS = {
    "BaseModelConfig": "base_model", "build_base_model": "base_model",
    "CheckpointError": "checkpoint_files", "content_hash": "checkpoint_files", "read_metadata": "checkpoint_io",
    "verify_checkpoint": "checkpoint_io",
    "CorpusPrompt": "corpus", "builtin_prompts": "corpus",
    "PreferencePair": "data", "TrainingCancelled": "data", "TrainResult": "data",
    "DPOConfig": "dpo", "run_dpo": "dpo",
    "Generated": "generation", "generate_responses": "generation",
    "PPOConfig": "ppo", "run_ppo": "ppo",
    "RewardModelConfig": "reward_model", "RewardScorer": "reward_model", "fit_reward_model": "reward_model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
