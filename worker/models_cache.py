"""Loaded policies, kept per checkpoint so generation switches without a restart."""

from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from worker.training.devices import pick_device
from worker.training.sequences import ensure_pad_token

_loaded: dict[str, tuple[PreTrainedModel, PreTrainedTokenizerBase]] = {}
MAX_LOADED = 2  # the current checkpoint and its parent (for blind comparisons)


def load_policy(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    key = str(path)
    if key not in _loaded:
        while len(_loaded) >= MAX_LOADED:
            _loaded.pop(next(iter(_loaded)))
        tokenizer = AutoTokenizer.from_pretrained(path)
        ensure_pad_token(tokenizer)
        model = AutoModelForCausalLM.from_pretrained(path).to(pick_device("auto"))
        model.eval()
        _loaded[key] = (model, tokenizer)
    return _loaded[key]

