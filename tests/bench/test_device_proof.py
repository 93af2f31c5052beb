"""bench/device_proof.py, the script a session lent a GPU runs, works: here on the CPU
at its tiny size, in bf16 autocast, so it does not rot while no device is lent."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("lora_r", [0, 4])
def test_the_device_proof_trains_all_three_on_a_cpu_dry_run(tmp_path, lora_r):
    out = tmp_path / "proof.json"
    subprocess.run([sys.executable, "-m", "bench.device_proof", "--device", "cpu", "--dtype", "bfloat16",
                    "--size", "tiny", "--pairs", "64", "--lora-r", str(lora_r), "--out", str(out)],
                   cwd=ROOT, env=os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
                   check=True, capture_output=True, timeout=300)
    results = json.loads(out.read_text())
    assert results["dtype"] == "bfloat16" and results["lora_r"] == lora_r and results["parameters"] > 0
    for trainer in ("reward_model", "dpo", "ppo"):
        assert results[trainer]["losses_finite"] and results[trainer]["weights_moved"], results[trainer]
        assert results[trainer]["saved_dtype"] == "torch.float32"  # bf16 autocast, float32 weights
        # With LoRA the checkpoint is an adapter on its base, loaded back through it.
        assert results[trainer]["adapter"] == (lora_r > 0), results[trainer]
        assert (results[trainer]["share_of_base"] < 0.5) == (lora_r > 0), results[trainer]
    # Generation: each engine that runs here (vLLM needs a GPU), against plain model.generate.
    speeds = results["generation"]
    assert speeds["in_process"] > 0 and speeds["model_generate"] > 0 and speeds["vllm"] == "not installed or no GPU"
