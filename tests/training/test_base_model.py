import time

from transformers import AutoModelForCausalLM, AutoTokenizer

from worker.training import BaseModelConfig, build_base_model, read_metadata, verify_checkpoint
from worker.training.checkpoint_io import METADATA_FILE


def test_base_model_is_a_plain_hf_directory_with_distinct_special_tokens(tiny_base_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model)
    assert None not in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert tokenizer.decode(tokenizer.encode("The red kite is lovely.")) == "The red kite is lovely."
    verify_checkpoint(tiny_base_model)


def test_pretraining_lowered_the_loss(tiny_base_model):
    metrics = read_metadata(tiny_base_model)["metrics"]
    assert metrics["final_loss"] < metrics["initial_loss"] - 3


def test_a_complete_build_is_reused(tiny_base_model):
    written = (tiny_base_model / METADATA_FILE).stat().st_mtime_ns
    config = BaseModelConfig(**read_metadata(tiny_base_model)["config"])
    started = time.perf_counter()
    assert build_base_model(tiny_base_model, config) == tiny_base_model
    assert time.perf_counter() - started < 1.0
    assert (tiny_base_model / METADATA_FILE).stat().st_mtime_ns == written
