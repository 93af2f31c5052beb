"""The pool's generation engines: which one runs, and vLLM's completions read as our sampler's.

vLLM needs a GPU (and a CUDA build of torch), so what runs of it here is the choice of engine and
the conversion of its completions; the engine itself is proven by bench/device_proof.py on a GPU.
"""

from types import SimpleNamespace

import pytest

from tests.conftest import reset_app_caches
from worker import engines
from worker.engines import InProcessEngine, as_generated, generation_engine


@pytest.fixture
def fresh_engine():
    generation_engine.cache_clear()
    yield
    generation_engine.cache_clear()
    reset_app_caches()


def test_auto_takes_the_in_process_sampler_without_vllm_and_a_gpu(fresh_engine):
    assert not engines.vllm_usable()
    assert isinstance(generation_engine(), InProcessEngine)


def test_asking_for_vllm_where_it_is_not_installed_says_so(fresh_engine, monkeypatch):
    monkeypatch.setenv("TUNELOOP_GENERATION_ENGINE", "vllm")
    reset_app_caches()
    with pytest.raises(RuntimeError, match=r"vLLM is not installed: pip install -e '.\[vllm\]'"):
        generation_engine()


def completion(token_ids, finish_reason, stop_reason=None, text=" Hello. "):
    """The fields of vllm.CompletionOutput that the engine reads."""
    return SimpleNamespace(token_ids=token_ids, finish_reason=finish_reason, stop_reason=stop_reason, text=text)


def test_vllm_completions_keep_their_end_id_as_our_sampler_does():
    ends, eos = {2, 7}, 2
    # Stopped at a turn end that vLLM reports as its stop reason but left out of the ids.
    turn_end = as_generated("Hi", [1, 5], completion([11, 12], "stop", 7), ends, eos)
    assert turn_end.token_ids == [11, 12, 7] and turn_end.ended_with_eos and turn_end.text == "Hello."
    # EOS: finish "stop" with no stop reason.
    assert as_generated("Hi", [1], completion([11], "stop"), ends, eos).token_ids == [11, 2]
    # Already there: kept once.
    assert as_generated("Hi", [1], completion([11, 7], "stop", 7), ends, eos).token_ids == [11, 7]
    # Cut at the length limit: no end id, not ended.
    cut = as_generated("Hi", [1], completion([11, 12, 13], "length"), ends, eos)
    assert cut.token_ids == [11, 12, 13] and not cut.ended_with_eos
