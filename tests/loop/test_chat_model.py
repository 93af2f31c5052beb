"""Bring your own chat model: a Llama and a Qwen2 built from their configs, with a chat template and
a turn end that is not EOS, through registration, generation, rating and a round (PostgreSQL)."""

import json
import os
import random
import shutil
import subprocess
import sys

import pytest
import torch
from sqlalchemy import func, select
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.checkpoints.service import make_current, register_checkpoint
from app.db import session_scope
from app.errors import InvalidInput
from app.models import Checkpoint, Prompt, Sample, TrainingRound
from app.prompts.service import NewPrompt, add_prompts
from app.rounds.lifecycle import launch_round
from app.rounds.schemas import RoundSettings
from app.settings import get_settings
from simulation.raters import answer_item
from simulation.rules import RULES
from tests.admin.conftest import train_queue  # noqa: F401  (a fixture)
from tests.conftest import reset_app_caches
from tests.factories import make_user
from tests.loop.test_safe_rounds import rate, run
from worker.pool import refill_pool
from worker.rounds import snapshot_ratings
from worker.training.base_model import ChatModelConfig, build_base_model
from worker.training.checkpoint_io import content_hash, read_metadata
from worker.training.corpus import builtin_prompts
from worker.training.generation import generate_responses
from worker.training.lora import ModelRef, load_causal_lm
from worker.training.packing import encode_pairs
from worker.training.sequences import encode_prompts, prompt_of, response_end_id

pytestmark = pytest.mark.slow
TINY_CHAT = dict(vocab_size=600, n_layer=2, n_head=2, n_embd=64, examples=3000, steps=200, batch_size=16)
SYSTEM = {"role": "system", "content": "Answer in one sentence."}


@pytest.fixture(scope="session", params=["llama", "qwen2"])
def chat_model(request, tmp_path_factory):
    return build_base_model(tmp_path_factory.mktemp("chat") / request.param,
                            ChatModelConfig(architecture=request.param, **TINY_CHAT))


def test_registration_refuses_what_is_not_a_causal_lm_and_describes_what_is(db, chat_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(chat_model, broken)
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(InvalidInput, match="unreadable weights"):
        register_checkpoint(db, broken)
    (broken / "tokenizer.json").unlink()
    (broken / "tokenizer_config.json").unlink()
    with pytest.raises(InvalidInput, match="no tokenizer files"):
        register_checkpoint(db, broken)
    config = json.loads((chat_model / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps(config | {"architectures": ["LlamaForSequenceClassification"]}))
    with pytest.raises(InvalidInput, match="not a causal language model"):
        register_checkpoint(db, broken)
    assert db.scalars(select(Checkpoint)).all() == []

    checkpoint = register_checkpoint(db, chat_model, name="chat")
    assert checkpoint.status == "current"
    assert checkpoint.metrics["chat_template"] is True and 50_000 < checkpoint.metrics["parameters"] < 2_000_000
    assert checkpoint.metrics["architecture"] in ("LlamaForCausalLM", "Qwen2ForCausalLM")


def test_the_loop_on_a_chat_model_uses_its_template_and_the_ids_it_sampled(db, chat_model, monkeypatch,
                                                                         train_queue, tmp_path):
    monkeypatch.setenv("TUNELOOP_POOL_TARGET", "64")
    monkeypatch.setenv("TUNELOOP_PROMOTION", "gates")
    monkeypatch.setenv("TUNELOOP_TRAIN_GRADIENT_CHECKPOINTING", "on")
    reset_app_caches()
    shutil.rmtree(get_settings().checkpoint_dir, ignore_errors=True)
    register_checkpoint(db, chat_model, name="chat")
    add_prompts(db, [NewPrompt(text=p.text, messages=[SYSTEM, {"role": "user", "content": p.text}], source="chat")
                     for p in builtin_prompts()[:96]])
    user = make_user(db, "carol")
    db.commit()

    # Generation renders the template and stops at the turn end, which is not EOS.
    assert refill_pool(seed=0) == 64
    tokenizer = AutoTokenizer.from_pretrained(chat_model)
    turn_end = response_end_id(tokenizer)
    assert turn_end != tokenizer.eos_token_id
    samples = db.scalars(select(Sample)).all()
    ended = [s for s in samples if s.generation["ended_with_eos"]]
    assert len(ended) > len(samples) / 2 and all(s.token_ids[-1] == turn_end for s in ended)
    assert all(s.tokenizer and s.token_ids for s in samples)

    rule, rng = RULES["positive"], random.Random(0)
    assert rate(user.id, 96, lambda item: answer_item(rule, item, 0.0, rng)) == 96
    assert all(item_turns == 2 for item_turns in [len(m) for m in db.scalars(select(Prompt.messages))])

    # Training reads exactly the ids generation saw: the prompt as the template rendered it, the
    # responses as sampled.
    with session_scope() as session:
        round_id = launch_round(session, RoundSettings(algorithm="dpo", policy_steps=8), None).id
    pairs = snapshot_ratings(round_id, RoundSettings()).pairs
    sampled = {tuple(s.token_ids) for s in db.scalars(select(Sample))}
    prompts = {p.id: prompt_of(p.text, p.messages) for p in db.scalars(select(Prompt))}
    for pair, (prompt_ids, chosen_ids, rejected_ids) in zip(pairs, encode_pairs(tokenizer, pairs, 256)):
        assert pair.prompt in prompts.values() and isinstance(pair.prompt, tuple)
        assert prompt_ids == encode_prompts(tokenizer, [pair.prompt])[0]
        assert prompt_ids[-3:] == tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"][-3:]
        assert tuple(chosen_ids) in sampled and tuple(rejected_ids) in sampled

    # A round trains LoRA adapters on them (the reference: the adapter switched off) and publishes
    # the adapter alone, naming the registered model by content hash.
    with session_scope() as session:
        session.delete(session.get(TrainingRound, round_id))  # that one only took the snapshot
    # A store that another database's rounds wrote to: the next round's names are taken.
    store = get_settings().checkpoint_dir
    (store / f"round-{round_id + 1}").mkdir(parents=True)
    (store / "rounds" / str(round_id + 1) / "reward_model").mkdir(parents=True)
    round_ = run({"algorithm": "dpo", "policy_steps": 8, "seed": 0, "lora_r": 4}, db)
    assert round_.status in ("succeeded", "rejected"), (round_.error, round_.log)
    assert round_.report["lora_r"] == 4 and round_.report["policy"]["steps_run"] >= 1
    assert round_.report["gradient_checkpointing"] is True
    assert round_.produced_checkpoint_id, round_.report["policy"]
    produced, base = db.get(Checkpoint, round_.produced_checkpoint_id), db.get(Checkpoint, round_.base_checkpoint_id)
    assert round_.id == round_id + 1 and produced.path == f"round-{round_.id}-2"
    adapter = get_settings().checkpoint_dir / produced.path
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "model.safetensors").exists()
    assert read_metadata(adapter)["base"] == {"content_hash": content_hash(chat_model)} == {
        "content_hash": base.content_hash}
    assert AutoTokenizer.from_pretrained(adapter).chat_template
    adapter_bytes = sum(f.stat().st_size for f in adapter.iterdir())
    assert adapter_bytes < sum(f.stat().st_size for f in chat_model.iterdir()) / 2

    # Live, it generates: the pool samples the adapter and, for the raters' progress comparisons,
    # its parent, from one loaded copy of the base.
    make_current(db, produced)
    db.commit()
    monkeypatch.setenv("TUNELOOP_POOL_TARGET", "128")
    monkeypatch.setenv("TUNELOOP_PROGRESS_SHARE", "0.5")
    reset_app_caches()
    assert refill_pool(seed=1) > 0
    db.expire_all()
    by = {c: db.scalar(select(func.count(Sample.id)).where(Sample.checkpoint_id == c)) for c in (produced.id, base.id)}
    assert by[produced.id] > 0 and by[base.id] > 64, by

    # `tuneloop checkpoint export ID DIR`: the adapter merged into a standalone model that transformers
    # loads, that computes what the adapter on its base computes, and that generates through its own
    # template, stopping at the turn end.
    exported = tmp_path / "exported"
    result = subprocess.run([sys.executable, "-m", "app.cli", "checkpoint", "export", str(produced.id), str(exported)],
                            env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    model, tokenizer = AutoModelForCausalLM.from_pretrained(exported), AutoTokenizer.from_pretrained(exported)
    ids = torch.tensor([encode_prompts(tokenizer, [(("user", "Tell me about the garden."),)])[0]])
    on_base = load_causal_lm(adapter, ModelRef(chat_model, base.content_hash)).eval()
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, on_base(ids).logits, atol=1e-4)
        assert not torch.allclose(model(ids).logits, AutoModelForCausalLM.from_pretrained(chat_model)(ids).logits)
    [sample] = generate_responses(model, tokenizer, [(("user", "Tell me about the garden."),)], seed=0)
    assert tokenizer.chat_template and sample.text
    again = subprocess.run([sys.executable, "-m", "app.cli", "checkpoint", "export", str(produced.id), str(exported)],
                           env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr
