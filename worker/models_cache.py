"""Policies loaded for generation, kept so that generation switches checkpoints without a restart.

Each full model is loaded once. An adapter checkpoint is its adapter, loaded
onto its base's model under a name of its own and switched in while it
generates (peft); a full model that carries adapters generates with them
switched off. So the current checkpoint and the candidate under review, two
rounds of one base, share one copy of the base's weights.
"""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from worker.training.devices import pick_device
from worker.training.lora import ModelRef, full_model_dir, is_adapter
from worker.training.sequences import ensure_pad_token

MAX_LOADED = 2  # full models: the current checkpoint's base and a rival's, when they differ
MAX_ADAPTERS = 4  # adapters kept on one base


@dataclass
class _Loaded:
    model: PreTrainedModel | PeftModel
    tokenizer: PreTrainedTokenizerBase
    adapters: dict[str, tuple[str, PreTrainedTokenizerBase]] = field(default_factory=dict)  # path: (name, tok)


_loaded: dict[str, _Loaded] = {}
_names = itertools.count()


def _tokenizer(path: Path) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(path)
    ensure_pad_token(tokenizer)
    return tokenizer


def _full(path: Path) -> _Loaded:
    key = str(path)
    if key not in _loaded:
        while len(_loaded) >= MAX_LOADED:
            _loaded.pop(next(iter(_loaded)))
        model = AutoModelForCausalLM.from_pretrained(path).to(pick_device("auto")).eval()
        _loaded[key] = _Loaded(model, _tokenizer(path))
    return _loaded[key]


@contextmanager
def loaded_policy(path: Path, base: ModelRef | None = None
                  ) -> Iterator[tuple[PreTrainedModel | PeftModel, PreTrainedTokenizerBase]]:
    """The checkpoint at `path` ready to generate, with its tokenizer, while the block runs;
    `base` is the full model under it (worker.checkpoint_models.model_ref), needed for an adapter."""
    if not is_adapter(path):
        entry = _full(path)
        if isinstance(entry.model, PeftModel):
            with entry.model.disable_adapter():
                yield entry.model, entry.tokenizer
        else:
            yield entry.model, entry.tokenizer
        return
    entry = _full(full_model_dir(path, base))
    key = str(path)
    if key not in entry.adapters:
        name = f"checkpoint-{next(_names)}"
        if isinstance(entry.model, PeftModel):
            entry.model.load_adapter(path, adapter_name=name)
        else:
            entry.model = PeftModel.from_pretrained(entry.model, path, adapter_name=name)
        entry.model.to(pick_device("auto")).eval()
        entry.adapters[key] = (name, _tokenizer(path))
        while len(entry.adapters) > MAX_ADAPTERS:
            oldest = next(iter(entry.adapters))
            entry.model.delete_adapter(entry.adapters.pop(oldest)[0])
    name, tokenizer = entry.adapters[key]
    entry.model.set_adapter(name, inference_mode=True)
    yield entry.model, tokenizer
