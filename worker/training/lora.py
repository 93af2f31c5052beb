"""LoRA adapters (peft): training them, and checkpoints that are an adapter on a base model.

A LoRA round publishes its adapter alone (adapter weights, its config and the
tokenizer), with `tuneloop.json` naming the full model it adapts by content
hash (`"base"`); a round that starts from such a checkpoint goes on training
the same adapter, so every adapter checkpoint is one adapter on one full base,
however many rounds came before. Its reference (the checkpoint it started
from) is a frozen second copy of the parent's adapter on the same base weights,
switched in for the reference's log-probs: no second copy of the model. A
round from a full checkpoint starts a fresh adapter and uses the base itself,
adapter switched off, as its reference.

The core never looks a hash up: callers pass the base's directory with its
hash (`ModelRef`). A reward model always starts from the full base, also when
the policy is an adapter, so that its adapter names the same base.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from worker.training.checkpoint_io import ADAPTER_WEIGHTS, stored_content_hash, write_checkpoint

ADAPTER_CONFIG = "adapter_config.json"
TRAINED = "default"  # peft's name for the adapter a model is loaded or created with
PARENT = "parent"  # the frozen copy of the parent's adapter: the reference


@dataclass(frozen=True)
class ModelRef:
    """A full model directory and the content hash that names it."""

    path: Path
    content_hash: str


def is_adapter(directory: Path) -> bool:
    return (Path(directory) / ADAPTER_CONFIG).is_file()


def add_lora(model: PreTrainedModel, r: int, alpha: int, task: TaskType) -> PeftModel:
    """Freeze `model` and train low-rank adapters on all its linear layers.

    For a sequence classifier peft also trains the scalar head in full.
    """
    return get_peft_model(model, LoraConfig(task_type=task, r=r, lora_alpha=alpha, target_modules="all-linear"))


def load_causal_lm(directory: Path, base: ModelRef | None = None) -> PreTrainedModel | PeftModel:
    """The model a checkpoint directory holds, ready to run: a full model, or its adapter on `base`."""
    if not is_adapter(directory):
        return AutoModelForCausalLM.from_pretrained(directory)
    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(_base_path(directory, base)), directory)


def load_policy_for_training(directory: Path, base: ModelRef | None, lora_r: int, lora_alpha: int,
                             wrap=lambda model: model) -> PreTrainedModel | PeftModel:
    """The policy a round trains, starting from a checkpoint; `wrap` is applied to the
    transformers model before any adapter.

    - full checkpoint, `lora_r` 0: every weight trains.
    - full checkpoint, `lora_r` > 0: a fresh adapter of that rank; the reference is the adapter off.
    - adapter checkpoint, `lora_r` > 0: its adapter trains on (at its own rank), beside a frozen
      copy of it (`PARENT`), which is the reference.
    - adapter checkpoint, `lora_r` 0: the adapter is merged into the base and every weight trains.
    """
    if not is_adapter(directory):
        model = wrap(AutoModelForCausalLM.from_pretrained(directory))
        return add_lora(model, lora_r, lora_alpha, TaskType.CAUSAL_LM) if lora_r > 0 else model
    base_model = wrap(AutoModelForCausalLM.from_pretrained(_base_path(directory, base)))
    if lora_r == 0:
        return PeftModel.from_pretrained(base_model, directory).merge_and_unload().requires_grad_(True)
    policy = PeftModel.from_pretrained(base_model, directory, is_trainable=True)
    policy.load_adapter(directory, adapter_name=PARENT, is_trainable=False)
    policy.set_adapter(TRAINED)
    return policy


def load_sequence_classifier(directory: Path, base: ModelRef | None = None, **kwargs) -> PreTrainedModel:
    """A saved reward model as one plain classifier (an adapter checkpoint merged into its base)."""
    if not is_adapter(directory):
        return AutoModelForSequenceClassification.from_pretrained(directory, **kwargs)
    model = AutoModelForSequenceClassification.from_pretrained(_base_path(directory, base),
                                                               **({"num_labels": 1} | kwargs))
    return PeftModel.from_pretrained(model, directory).merge_and_unload()


@contextmanager
def as_parent(policy: PreTrainedModel | PeftModel) -> Iterator[PreTrainedModel | PeftModel]:
    """The policy as the checkpoint it started from, for the reference's log-probs: the parent's
    adapter switched in, or the adapter switched off. Only for policies that carry an adapter."""
    if not isinstance(policy, PeftModel):
        raise TypeError("without a reference copy the policy must carry a LoRA adapter")
    if PARENT not in policy.peft_config:
        with policy.disable_adapter():
            yield policy
        return
    policy.set_adapter(PARENT, inference_mode=True)
    try:
        yield policy
    finally:
        policy.set_adapter(TRAINED)  # trainable again


def full_model_dir(directory: Path, base: ModelRef | None) -> Path:
    """The directory of the full model under a checkpoint: `base`'s, which an adapter checkpoint
    must be given; a full checkpoint is its own."""
    return _base_path(directory, base) if base is not None or is_adapter(directory) else Path(directory)


def base_model_of(directory: Path, base: ModelRef | None) -> ModelRef:
    """`full_model_dir` with its hash: the one it was published with, or computed."""
    path = full_model_dir(directory, base)
    return base if base is not None else ModelRef(path, stored_content_hash(path))


def write_trained(out_dir: Path, model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase, *,
                  parent: Path, base: ModelRef | None, extra_metadata: dict[str, Any] | None = None,
                  state_dict: dict[str, torch.Tensor] | None = None, **metadata: Any) -> Path:
    """Publish a trained model with its tokenizer (`checkpoint_io.write_checkpoint`): the trained
    adapter alone, naming the full model under `parent` by hash, or every weight. `state_dict`:
    the model's whole weights when it holds a shard of them (`Ranks.whole_state_dict`)."""
    adapter = isinstance(model, PeftModel)
    extra = dict(extra_metadata or {})
    if adapter:
        extra["base"] = {"content_hash": base_model_of(parent, base).content_hash}

    def save(directory: Path) -> None:
        if adapter:
            model.save_pretrained(directory, selected_adapters=[TRAINED], state_dict=state_dict)
            _cast_adapter(directory, unwrap_model(model).get_input_embeddings().weight.dtype)
        else:
            model.save_pretrained(directory, state_dict=state_dict)
        tokenizer.save_pretrained(directory)

    return write_checkpoint(out_dir, save, parent=str(parent), extra_metadata=extra, **metadata)


def unwrap_model(model: PreTrainedModel | PeftModel) -> PreTrainedModel:
    """The underlying transformers model; LoRA layers stay injected in it."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def merged_model(model: PreTrainedModel | PeftModel) -> PreTrainedModel:
    """A plain transformers model with any adapters folded into its weights."""
    return model.merge_and_unload() if isinstance(model, PeftModel) else model


def _cast_adapter(directory: Path, dtype: torch.dtype) -> None:
    """Store the adapter in its base's dtype: peft trains adapters in float32 even on a bfloat16
    base, which would double what every round of a bfloat16 model adds to the store."""
    path = Path(directory) / ADAPTER_WEIGHTS
    tensors = load_file(path)
    if any(t.dtype != dtype for t in tensors.values()):
        save_file({name: t.to(dtype) for name, t in tensors.items()}, path, metadata={"format": "pt"})


def _base_path(directory: Path, base: ModelRef | None) -> Path:
    if base is None:
        raise ValueError(f"{directory} holds a LoRA adapter: the base model it adapts must be given")
    return Path(base.path)
