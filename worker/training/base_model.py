"""Build the local base policy: a byte-level BPE tokenizer and a small GPT-2,
both trained from scratch on the templated corpus, saved as a normal Hugging
Face directory so `AutoModelForCausalLM` / `AutoTokenizer` load it offline.

`ChatModelConfig` builds the same, as a real chat architecture (Llama or
Qwen2 from their configs) whose tokenizer carries a chat template with a turn
end distinct from EOS, listed beside EOS in the generation config: what a
team's own instruction-tuned model looks like, small enough for CI.
"""

import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from worker.training.checkpoint_io import METADATA_FILE, write_checkpoint
from worker.training.corpus import ON_TOPIC_PROBABILITY, pretraining_examples
from worker.training.kernels import adamw
from worker.training.sequences import (
    PROMPT_SEPARATOR,
    encode_prompts,
    encode_responses,
    pad_right,
    position_ids_for,
    response_end_id,
)

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
TURN_START, TURN_END = "<|im_start|>", "<|im_end|>"
# ChatML, as Qwen2 uses it: every turn closes with TURN_END, which is not EOS.
CHAT_TEMPLATE = (
    "{% for message in messages %}" + TURN_START + "{{ message['role'] }}\n{{ message['content'] }}" + TURN_END
    + "\n{% endfor %}{% if add_generation_prompt %}" + TURN_START + "assistant\n{% endif %}"
)


@dataclass
class BaseModelConfig:
    seed: int = 0
    # Tokenizer: the corpus has a few hundred distinct words, so 1024 entries
    # make nearly every word one token.
    vocab_size: int = 1024
    # Network: about 1M parameters (4 layers, 128 wide).
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 256
    # Pretraining: 300 steps of 32 sequences take the loss from ~7 to ~1.7 but
    # leave the model mostly ignoring the prompt; by ~900 it names the prompt's
    # topic about as often as the corpus does (bench/README.md, learning benchmark).
    examples: int = 20_000
    # Share of corpus responses about the prompt's own topic (the rest name another).
    on_topic: float = ON_TOPIC_PROBABILITY
    steps: int = 900
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 30


@dataclass
class ChatModelConfig(BaseModelConfig):
    architecture: Literal["llama", "qwen2"] = "llama"


def build_base_model(out_dir: Path, config: BaseModelConfig | None = None) -> Path:
    """Build (or reuse) the base model at `out_dir` and return that path."""
    config = config or BaseModelConfig()
    out_dir = Path(out_dir)
    if (out_dir / METADATA_FILE).is_file():
        return out_dir
    torch.manual_seed(config.seed)

    # Data: (prompt, response) pairs in the same token layout generation uses.
    examples = pretraining_examples(config.examples, seed=config.seed, on_topic=config.on_topic)
    chat = isinstance(config, ChatModelConfig)
    tokenizer = train_tokenizer([p + PROMPT_SEPARATOR + r for p, r in examples], config.vocab_size, chat=chat)
    sequences = [p + r for p, r in zip(encode_prompts(tokenizer, [p for p, _ in examples]),
                                       encode_responses(tokenizer, [r for _, r in examples]))]

    # Model.
    model = _chat_model(config, tokenizer) if chat else GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=config.n_positions,
            n_embd=config.n_embd,
            n_layer=config.n_layer,
            n_head=config.n_head,
            # No dropout: pretraining is short, and RL needs it off anyway
            # (dropout makes the sampling and training log-probs disagree).
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    # Loop: AdamW with linear warmup then cosine decay.
    optimizer = adamw(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _warmup_cosine(step, config.warmup_steps, config.steps)
    )
    order = random.Random(config.seed)
    model.train()
    losses = []
    for _ in range(config.steps):
        batch = order.sample(sequences, config.batch_size)
        input_ids, attention_mask = pad_right(batch, tokenizer.pad_token_id)  # (B, T)
        labels = input_ids.masked_fill(attention_mask == 0, -100)  # no loss on padding
        loss = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_for(attention_mask),
            labels=labels,
        ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()

    # Checkpoint.
    def save(directory: Path) -> None:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    tail = losses[-10:]
    metrics = {"initial_loss": losses[0], "final_loss": sum(tail) / len(tail)}
    try:
        return write_checkpoint(
            out_dir, save, algorithm="pretrain", config=asdict(config), metrics=metrics, parent=None
        )
    except FileExistsError:
        # Another process published the same build first; theirs is as good as ours.
        if (out_dir / METADATA_FILE).is_file():
            return out_dir
        raise


def train_tokenizer(texts: list[str], vocab_size: int, chat: bool = False) -> PreTrainedTokenizerFast:
    """Byte-level BPE with BOS, EOS and a pad token distinct from EOS; with `chat`, also the
    turn marks and the chat template."""
    turns = [TURN_START, TURN_END] if chat else []
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[BOS, EOS, PAD, *turns],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                        additional_special_tokens=turns or None)
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _chat_model(config: ChatModelConfig, tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
    """A Llama or Qwen2 of the config's size; it stops at the turn end as well as at EOS."""
    kind, model_class = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[
        config.architecture]
    model = model_class(kind(
        vocab_size=len(tokenizer), hidden_size=config.n_embd, intermediate_size=4 * config.n_embd,
        num_hidden_layers=config.n_layer, num_attention_heads=config.n_head,
        num_key_value_heads=max(1, config.n_head // 2), max_position_embeddings=config.n_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    ))
    model.generation_config.eos_token_id = [response_end_id(tokenizer), tokenizer.eos_token_id]
    return model


def _warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
