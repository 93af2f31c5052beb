"""Optional LoRA adapters (peft), merged back so checkpoints stay plain HF directories."""

from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import PreTrainedModel


def add_lora(model: PreTrainedModel, r: int, alpha: int, task: TaskType) -> PeftModel:
    """Freeze `model` and train low-rank adapters on all its linear layers.

    For a sequence classifier peft also trains the scalar head in full.
    """
    return get_peft_model(model, LoraConfig(task_type=task, r=r, lora_alpha=alpha, target_modules="all-linear"))


def unwrap_model(model: PreTrainedModel | PeftModel) -> PreTrainedModel:
    """The underlying transformers model; LoRA layers stay injected in it."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def merged_model(model: PreTrainedModel | PeftModel) -> PreTrainedModel:
    """A plain transformers model with any adapters folded into its weights."""
    return model.merge_and_unload() if isinstance(model, PeftModel) else model
