"""models.common: dtype choice per GPU generation."""

from __future__ import annotations

import pytest
import torch

from models.common import pick_dtype


@pytest.mark.parametrize(
    ("capability", "float16_ok", "expected"),
    [
        ((7, 5), True, torch.float16),  # T4, the free Colab GPU: bf16 only emulated
        ((7, 5), False, torch.float32),  # Pop2Piano (a T5) stays float32 there
        ((8, 0), True, torch.bfloat16),  # A100
        ((9, 0), False, torch.bfloat16),  # H100
    ],
)
def test_bfloat16_only_where_the_hardware_has_it(monkeypatch, capability, float16_ok, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # as on a T4
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert pick_dtype(torch.device("cuda"), float16_ok=float16_ok) == expected


def test_cpu_is_float32():
    assert pick_dtype(torch.device("cpu")) == torch.float32
