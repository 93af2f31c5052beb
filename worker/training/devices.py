"""Where training runs and in which precision."""

import contextlib

import torch


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_for(device: torch.device, dtype: str):
    """bf16 autocast when asked for; weights and optimiser state stay float32."""
    if dtype == "float32":
        return contextlib.nullcontext()
    if dtype == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"unknown dtype {dtype!r}; use 'float32' or 'bfloat16'")
