"""Where the pool's samples come from: one interface, two engines.

- `InProcessEngine`: the checkpoint loaded in this process (worker.models_cache:
  a base once, adapters switched in) and our own KV-cached sampler
  (worker.training.generation). CPU, tests, small models.
- `VllmEngine`: vLLM with the base model loaded once and each adapter checkpoint
  passed as a LoRA request at run time, for GPUs (`pip install -e '.[vllm]'`).
  Prompts go in as the token ids our chat-template code renders, and every end
  id the model declares is a stop id, so a sample's ids are what training reads
  either way. Not yet run on a GPU here (README: "The GPU engine").

`TUNELOOP_GENERATION_ENGINE` chooses: "auto" takes vLLM when it is installed and
a GPU is present, else the in-process sampler. PPO's rollouts and the watch's
samples stay in the training process (they sample the policy being trained).
"""

import functools
import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Protocol

from app.settings import get_settings
from worker.models_cache import loaded_policy
from worker.training.generation import Generated, generate_responses
from worker.training.lora import ModelRef, full_model_dir, is_adapter
from worker.training.sequences import Prompt, encode_prompts, stop_ids, tokenizer_fingerprint


class Engine(Protocol):
    name: str

    def generate(self, path: Path, base: ModelRef | None, prompts: list[Prompt], *, seed: int,
                 temperature: float, max_new_tokens: int) -> tuple[list[Generated], str]:
        """One sample per prompt from the checkpoint at `path` (an adapter needs `base`), and the
        fingerprint of the tokenizer its token ids belong to."""


class InProcessEngine:
    name = "in_process"

    def generate(self, path, base, prompts, *, seed, temperature, max_new_tokens):
        with loaded_policy(path, base) as (model, tokenizer):
            results = generate_responses(model, tokenizer, prompts, seed=seed, temperature=temperature,
                                         max_new_tokens=max_new_tokens)
            return results, tokenizer_fingerprint(tokenizer)


class VllmEngine:
    name = "vllm"
    MAX_LORA_RANK = 64

    def __init__(self):
        if importlib.util.find_spec("vllm") is None:
            raise RuntimeError("TUNELOOP_GENERATION_ENGINE=vllm, but vLLM is not installed: "
                               "pip install -e '.[vllm]' on a machine with a GPU")
        self._llms: dict[str, object] = {}  # full model directory -> vllm.LLM
        self._adapters: dict[str, int] = {}  # adapter directory -> LoRA id (vLLM caches its weights)

    def _llm(self, model_dir: Path):
        from vllm import LLM

        key = str(model_dir)
        if key not in self._llms:
            self._llms.clear()  # one base on the GPU at a time
            self._llms[key] = LLM(model=key, enable_lora=True, max_lora_rank=self.MAX_LORA_RANK,
                                  dtype="auto", gpu_memory_utilization=0.5)
        return self._llms[key]

    def generate(self, path, base, prompts, *, seed, temperature, max_new_tokens):
        from transformers import AutoTokenizer, GenerationConfig
        from vllm import SamplingParams, TokensPrompt
        from vllm.lora.request import LoRARequest

        model_dir = full_model_dir(path, base)
        llm = self._llm(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(path)
        has_config = (model_dir / "generation_config.json").is_file()
        declared = GenerationConfig.from_pretrained(model_dir) if has_config else None
        ends = stop_ids(tokenizer, SimpleNamespace(generation_config=declared))
        lora = None
        if is_adapter(path):
            lora_id = self._adapters.setdefault(str(path), len(self._adapters) + 1)
            lora = LoRARequest(f"checkpoint-{lora_id}", lora_id, str(path))
        prompt_ids = encode_prompts(tokenizer, prompts)
        params = SamplingParams(temperature=temperature, max_tokens=max_new_tokens, seed=seed,
                                stop_token_ids=sorted(ends), skip_special_tokens=True)
        outputs = llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids], params,
                               lora_request=lora, use_tqdm=False)
        results = [as_generated(prompt, ids, output.outputs[0], ends, tokenizer.eos_token_id)
                   for prompt, ids, output in zip(prompts, prompt_ids, outputs)]
        return results, tokenizer_fingerprint(tokenizer)


def as_generated(prompt: Prompt, prompt_ids: list[int], completion, ends: set[int], eos_id: int) -> Generated:
    """A vLLM completion as our sampler returns it: the end id kept as the last token id (vLLM
    reports EOS as finish_reason "stop" with no stop_reason and may leave it out of token_ids)."""
    tokens = list(completion.token_ids)
    ended = completion.finish_reason == "stop"
    if ended and (not tokens or tokens[-1] not in ends):
        tokens.append(completion.stop_reason if isinstance(completion.stop_reason, int) else eos_id)
    return Generated(prompt, completion.text.strip(), prompt_ids, tokens, ended)


def vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


@functools.cache
def generation_engine() -> Engine:
    choice = get_settings().generation_engine
    if choice == "vllm" or (choice == "auto" and vllm_usable()):
        return VllmEngine()
    return InProcessEngine()
