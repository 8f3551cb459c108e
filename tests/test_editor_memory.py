"""benchmarks/editor_memory.py: the weights and optimizer memory it prints are the models' own counts."""

from __future__ import annotations

import json

import pytest
import torch

GIB = 2**30


@pytest.fixture(scope="module")
def memory(load_benchmark):
    return load_benchmark("editor_memory")


def _lora_params(transformer, targets, rank) -> int:
    """rank x (in + out) for every Linear whose name is a target or ends with '.' + a target (peft's rule)."""
    return sum(rank * (m.in_features + m.out_features) for name, m in transformer.named_modules()
               if isinstance(m, torch.nn.Linear) and any(name == t or name.endswith("." + t) for t in targets))


@pytest.mark.parametrize("name, size", [("flux2-klein", "tiny-klein"), ("qwen-image-edit-2511", "tiny")])
def test_counts_and_memory_formulas(memory, name, size):
    import sizes

    record = memory.memory(name, size, rank=4)
    pipe = memory.EDITOR_SIZES[name][0](size, "cpu", torch.float32)  # the same build, with real tensors
    counts = {k: sum(p.numel() for p in getattr(pipe, m).parameters())
              for k, m in (("denoiser", "transformer"), ("text_encoder", "text_encoder"), ("vae", "vae"))}
    assert record["params_b"] == {k: round(v / 1e9, 4) for k, v in counts.items()}
    lora = _lora_params(pipe.transformer, record["lora_targets"], 4)
    assert lora > 0 and record["lora_params_m"] == round(lora / 1e6, 3)
    frozen = 2 * (counts["denoiser"] + counts["vae"]) / GIB
    text = 2 * counts["text_encoder"] / GIB
    grpo, training = record["grpo_gib"], record["training_gib"]
    assert grpo["adamw"] == round(frozen + text + 16 * lora / GIB, 3)
    assert grpo["adamw_8bit"] == round(frozen + text + 10 * lora / GIB, 3)
    assert training["adamw"] == round(frozen + 16 * lora / GIB, 3)  # the text encoder on the CPU while training
    # FSDP over 2: half the denoiser, plus its layers outside the blocks and two blocks gathered
    blocks = [b for name, blocks in pipe.transformer.named_children() if name.endswith("transformer_blocks") for b in blocks]
    sizes_ = [sum(p.numel() for p in b.parameters()) for b in blocks]
    whole = counts["denoiser"] - sum(sizes_) + 2 * max(sizes_)
    assert grpo["fsdp_2_adamw"] == round((counts["denoiser"] + 2 * whole + 2 * counts["vae"] + 2 * counts["text_encoder"]) / GIB
                                         + 16 * lora / GIB, 3)
    assert training["fsdp_2_adamw_8bit"] == round((counts["denoiser"] + 2 * whole + 2 * counts["vae"]) / GIB + 10 * lora / GIB, 3)
    assert record["sampling_gib"]["all"] == round(2 * sum(counts.values()) / GIB, 3)
    assert all(record["fits_80gb"].values())  # toys fit
    assert sizes.FLUX2["dev"]["transformer"] == {}  # the released dev transformer is diffusers' default config


def test_real_sizes_are_the_released_models(memory):
    """FLUX.2 [dev]'s transformer is ~32 B parameters: with its 24 B text encoder, which comes back for every encode
    even when offloaded, LoRA GRPO fits no 80 GB GPU unless the denoiser is sharded over 8; Klein 4B fits one."""
    dev = memory.memory("flux2", "dev", rank=64)
    klein = memory.memory("flux2-klein", "klein-4b", rank=64)
    assert 31 < dev["params_b"]["denoiser"] < 33 and 3.5 < klein["params_b"]["denoiser"] < 4.5
    assert 23 < dev["params_b"]["text_encoder"] < 25 and 3.5 < klein["params_b"]["text_encoder"] < 4.5
    fits = dev["fits_80gb"]
    assert not fits["sampling_all"] and not fits["grpo_adamw"] and not fits["grpo_fsdp_2_adamw"]
    assert fits["grpo_fsdp_8_adamw"] and klein["fits_80gb"]["grpo_adamw"]
    # offloaded, the text encoder's 43 GiB leave the GPU while training
    assert dev["grpo_gib"]["fsdp_8_adamw"] - dev["training_gib"]["fsdp_8_adamw"] == pytest.approx(2 * 23.3403e9 / GIB, abs=0.01)


def test_editors_without_a_size_say_why(memory, capsys):
    assert memory.main(["--sizes", "tiny"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["editor"] for r in lines] == [*memory.EDITOR_SIZES, "longcat-image-edit"]
    assert "block counts" in lines[-1]["not_built"] and "cannot save LoRA" in lines[-1]["not_built"]
