"""The preference export feeds a trainer: `datasets` loads it, the project's
Bradley–Terry reward trainer takes a step on it."""

import math
import os

import pytest
from transformers import AutoTokenizer

from app.users.service import create_token
from tests.api.conftest import bearer
from tests.api.test_export import answer
from tests.factories import make_items, make_user

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.mark.slow
def test_exported_preferences_load_in_datasets_and_train_a_step(client, admin, make_rater, db, tmp_path):
    import datasets

    from worker.training import (
        BaseModelConfig,
        PreferencePair,
        RewardModelConfig,
        build_base_model,
        fit_reward_model,
    )

    make_items(db, 6, prompt_text="Name a colour ({i})")
    ann = make_rater("ann")
    for n in range(6):
        answer(client, ann, lambda s, n=n: (
            {"item_id": s["item_id"], "verdict": "tie"} if n == 5 else
            {"item_id": s["item_id"], "verdict": "preferred", "preferred_response_id": s["responses"][0]["id"]}))
    export = client.get("/api/v1/export/preferences", params={"include_ties": True}, headers=admin)
    assert export.status_code == 200
    path = tmp_path / "preferences.jsonl"
    path.write_bytes(export.content)

    rows = datasets.load_dataset("json", data_files=str(path), split="train",
                                 cache_dir=str(tmp_path / "hf-cache"))
    assert rows.num_rows == 6
    for column in ("prompt", "chosen", "rejected"):
        assert rows.features[column].dtype == "string"  # TRL's standard preference format
    assert {"rating_id", "rater", "item_id", "chosen_sample_id", "rejected_sample_id",
            "chosen_checkpoint_id", "rejected_checkpoint_id", "created_at", "tie"} <= set(rows.column_names)
    assert sum(rows["tie"]) == 1

    base = build_base_model(tmp_path / "base", BaseModelConfig(
        vocab_size=256, n_layer=1, n_head=2, n_embd=32, examples=200, steps=2, warmup_steps=1))
    pairs = [PreferencePair(r["prompt"], r["chosen"], r["rejected"], r["tie"]) for r in rows]
    result = fit_reward_model(base, pairs, RewardModelConfig(epochs=1, batch_size=len(pairs),
                                                                 eval_fraction=0.0, device="cpu"),
                              tmp_path / "reward")
    assert result.metrics["steps"] == 1 and result.metrics["train_pairs"] == 6
    assert math.isfinite(result.metrics["loss"])


@pytest.mark.slow
def test_the_conversational_export_is_trls_conversational_preference_format(client, admin, db, tmp_path):
    import datasets
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    from worker.training.base_model import ChatModelConfig, build_base_model

    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]
    body = {"items": [{"messages": chat, "responses": [{"text": "Blue."}, {"text": "I like many."}]}]}
    assert client.post("/api/v1/items", json=body, headers=admin).status_code == 201
    rater = bearer(create_token(db, make_user(db, "ann")))
    db.commit()
    answer(client, rater, lambda s: {"item_id": s["item_id"], "verdict": "preferred",
                                     "preferred_response_id": next(r["id"] for r in s["responses"]
                                                                   if r["text"] == "Blue.")})
    export = client.get("/api/v1/export/preferences", params={"format": "conversational"}, headers=admin)
    path = tmp_path / "conversational.jsonl"
    path.write_bytes(export.content)

    [row] = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert row["prompt"] == chat
    assert row["chosen"] == [{"role": "assistant", "content": "Blue."}]
    assert row["rejected"] == [{"role": "assistant", "content": "I like many."}]
    assert is_conversational(row)
    # TRL renders it with a model's own chat template, as its DPO and reward trainers do.
    tokenizer = AutoTokenizer.from_pretrained(build_base_model(
        tmp_path / "chat", ChatModelConfig(vocab_size=300, n_layer=1, n_head=2, n_embd=32, examples=200, steps=2,
                                           warmup_steps=1)))
    rendered = maybe_apply_chat_template(row, tokenizer)
    assert rendered["prompt"].endswith("<|im_start|>assistant\n") and "Be brief." in rendered["prompt"]
    assert rendered["chosen"].startswith("Blue.") and "<|im_end|>" in rendered["chosen"]


def test_thumbs_export_in_trls_unpaired_format(client, admin, make_rater, db, tmp_path):
    import datasets
    from trl.data_utils import is_conversational

    make_items(db, 4, responses=1, prompt_text="Name a colour ({i})")
    ann = make_rater("ann")
    for n in range(4):
        answer(client, ann, lambda s, n=n: {"item_id": s["item_id"], "thumb": "up" if n % 2 else "down"})
    for form, conversational in (("standard", False), ("conversational", True)):
        export = client.get("/api/v1/export/kto", params={"format": form}, headers=admin)
        assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
        path = tmp_path / f"kto-{form}.jsonl"
        path.write_bytes(export.content)
        rows = datasets.load_dataset("json", data_files=str(path), split="train",
                                     cache_dir=str(tmp_path / f"hf-cache-{form}"))
        assert rows.num_rows == 4 and sorted(rows["label"]) == [False, False, True, True]
        assert {"prompt", "completion", "label", "rating_id", "rater", "sample_id"} <= set(rows.column_names)
        assert is_conversational(rows[0]) is conversational
        if conversational:
            assert rows[0]["completion"][0]["role"] == "assistant" and rows[0]["prompt"][-1]["role"] == "user"
        else:
            assert rows[0]["prompt"].startswith("Name a colour")
