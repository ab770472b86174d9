"""Choosing bf16 autocast only where it is fast.

bf16 matmuls are ~9× faster than fp32 on CPUs with AMX, but on CPUs without bf16 hardware
(e.g. AVX2-only AMD EPYC) PyTorch emulates them far *slower* than fp32: on this project's CI
machine a bf16 training step takes ~11× as long (benchmarks/results/train_speed.json). So
`precision: auto` measures instead of guessing.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch

PRECISIONS = ("auto", "bf16", "fp32")


@lru_cache(maxsize=4)
def bf16_is_fast(device_type: str = "cpu") -> bool:
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    a = torch.randn(256, 256)
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        x = a.to(dtype)
        x @ x
        start = time.perf_counter()
        for _ in range(4):
            x @ x
        timings[dtype] = time.perf_counter() - start
    return timings[torch.bfloat16] < 0.8 * timings[torch.float32]


def use_bf16(precision: str, device_type: str) -> bool:
    return precision == "bf16" or (precision == "auto" and bf16_is_fast(device_type))
