"""models.common: dtype choice per GPU generation."""

from __future__ import annotations

import pytest
import torch

from models.devices import pick_dtype


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


def test_own_memory_copies_tensors_and_keeps_ties():
    import torch

    from models.int8 import own_memory, return_freed_memory

    base = torch.arange(12.0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(3, 4))
    module[1].weight = module[0].weight  # tied
    module[0].register_buffer("table", base.view(3, 4))  # a view: its base would stay alive through it
    module[1].register_buffer("table", module[0].table)  # shared buffer
    before = [t.clone() for t in (module[0].weight, module[0].bias, module[0].table)]
    own_memory(module)
    return_freed_memory()
    assert module[1].weight is module[0].weight and module[1].table is module[0].table
    assert module[0].table._base is None and module[0].table.untyped_storage().data_ptr() != base.data_ptr()
    for old, new in zip(before, (module[0].weight, module[0].bias, module[0].table)):
        assert torch.equal(old, new)


def test_int8_conversion_lets_go_of_the_checkpoint_file(tiny_musicgen_dir, tmp_path):
    """After the layer-by-layer int8 conversion no tensor points into the mapped safetensors file any more."""
    import gc
    import shutil

    from transformers import MusicgenForConditionalGeneration

    from models.int8 import _mapped_checkpoints
    from models.musicgen.layers import quantize_decoder_int8

    folder = tmp_path / "copy"
    shutil.copytree(tiny_musicgen_dir, folder)

    def maps_of_the_copy() -> int:
        with open("/proc/self/maps") as maps:
            return sum(str(folder) in line for line in maps)

    model = MusicgenForConditionalGeneration.from_pretrained(folder).eval()
    if not maps_of_the_copy():
        pytest.skip("this platform's loader reads the checkpoint instead of mapping it")
    before = {name: t.clone() for name, t in model.text_encoder.state_dict().items()}
    quantize_decoder_int8(model)
    gc.collect()
    assert maps_of_the_copy() == 0
    ranges = _mapped_checkpoints()
    for tensor in [*model.parameters(), *model.buffers()]:
        assert not any(a <= tensor.untyped_storage().data_ptr() < b for a, b in ranges)
    assert all(torch.equal(before[name], t) for name, t in model.text_encoder.state_dict().items())
    assert "quantized" in type(model.decoder.model.decoder.layers[0].fc1).__module__
