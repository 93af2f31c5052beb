"""What a Hugging Face model directory holds, read without torch: before anything is registered.

Checks, each refusing with one line: a readable config.json naming a causal
LM (its `architectures` end in ForCausalLM or LMHeadModel), tokenizer files,
and weights whose safetensors headers parse (the parameter count is summed
from them). It also notes whether the tokenizer carries a chat template: a
model with one is prompted through it, one without keeps the raw-text path.
"""

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

from app.errors import InvalidInput

CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
# A safetensors file starts with the length of its JSON header (u64, little-endian).
MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True)
class ModelDir:
    model_type: str
    architecture: str
    parameters: int | None  # None when the weights are not safetensors (a .bin is read only by torch)
    chat_template: bool

    def describe(self) -> str:
        size = f"{self.parameters / 1e6:.1f}M parameters" if self.parameters is not None else "size unknown (.bin)"
        return f"{self.architecture or self.model_type}, {size}, chat template: {'yes' if self.chat_template else 'no'}"

    def as_metrics(self) -> dict:
        return {"model_type": self.model_type, "architecture": self.architecture, "parameters": self.parameters,
                "chat_template": self.chat_template}


def inspect_model_dir(path: Path) -> ModelDir:
    config = _read_json(path / "config.json", f"{path} is not a Hugging Face model directory (no config.json)")
    architectures = config.get("architectures") or []
    if architectures and not any(a.endswith(CAUSAL_SUFFIXES) for a in architectures):
        raise InvalidInput(f"{path}: not a causal language model (architectures: {', '.join(architectures)})")
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise InvalidInput(f"{path} has no tokenizer files (tokenizer.json or tokenizer_config.json)")
    has_config = (path / "tokenizer_config.json").is_file()
    tokenizer_config = _read_json(path / "tokenizer_config.json", "") if has_config else {}
    chat_template = bool(tokenizer_config.get("chat_template")) or any(
        (path / name).is_file() for name in ("chat_template.jinja", "chat_template.json"))
    return ModelDir(model_type=str(config.get("model_type", "")),
                    architecture=architectures[0] if architectures else "",
                    parameters=_parameters(path), chat_template=chat_template)


def _parameters(path: Path) -> int | None:
    shards = sorted(path.glob("*.safetensors"))
    if not shards:
        if any(path.glob("*.bin")):
            return None
        raise InvalidInput(f"{path} has no weights (*.safetensors or *.bin)")
    return sum(_safetensors_parameters(shard) for shard in shards)


def _safetensors_parameters(file: Path) -> int:
    try:
        with file.open("rb") as stream:
            (length,) = struct.unpack("<Q", stream.read(8))
            if not 0 < length <= MAX_HEADER_BYTES:
                raise ValueError(f"header length {length}")
            header = json.loads(stream.read(length))
        return sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    except (OSError, ValueError, KeyError, TypeError, struct.error) as error:
        raise InvalidInput(f"{file}: unreadable weights ({error})") from None


def _read_json(file: Path, missing: str) -> dict:
    if not file.is_file():
        raise InvalidInput(missing)
    try:
        value = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise InvalidInput(f"{file}: unreadable ({error})") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{file}: expected a JSON object")
    return value
