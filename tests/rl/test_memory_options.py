"""The RL options for editors larger than one accelerator, on one process: the text encoders offloaded between encodes,
the optimizer choice (8-bit Adam through bitsandbytes), and the evaluation batches FSDP needs equal on every process
(the sharding itself: test_fsdp.py)."""

import importlib.machinery
import sys
import types
from types import SimpleNamespace

import pytest
import torch
from toys import small_config

from editrl.errors import EditRLError
from editrl.rl import GRPOConfig, GRPOTrainer
from editrl.rl.memory import optimizer_class
from editrl.rl.trainer import RLTrainer


def _trainer(tmp_path, prompts, **overrides) -> GRPOTrainer:
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.tiny import tiny_flux_kontext

    editor = FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=4)
    return GRPOTrainer(small_config(GRPOConfig, tmp_path, num_iterations=1, **overrides), editor=editor,
                       train_prompts=prompts, eval_prompts=prompts)


def test_offloaded_text_encoders_wait_on_the_cpu_and_change_nothing(tmp_path, prompts):
    runs = {}
    for offload in (False, True):
        trainer = _trainer(tmp_path / str(offload), prompts, offload_text_encoder=offload)
        encoders = trainer.editor.text_encoders
        assert len(encoders) == 2  # FLUX: CLIP and T5
        moves = []
        for module in encoders:  # where each encoder is sent, in order
            original = module.to
            module.to = lambda *args, _to=original, _m=module, **kw: (moves.append((_m, torch.device(args[0]))), _to(*args, **kw))[1]
        record = trainer.iteration(0)
        if offload:
            device = trainer.editor.device
            # the iteration's one encode: each encoder to the denoiser's device, then back to the CPU
            assert moves == [(m, device) for m in encoders] + [(m, torch.device("cpu")) for m in encoders]
            assert all(p.device.type == "cpu" for m in encoders for p in m.parameters())
        else:
            assert moves == []
        runs[offload] = record, [p.detach().clone() for p in trainer.params]
    (off, lora_off), (on, lora_on) = runs[False], runs[True]
    assert on == off and off["grad_norm"] > 0  # rewards, policy loss, ratios, KL, gradient: bit for bit
    assert all(torch.equal(a, b) for a, b in zip(lora_on, lora_off, strict=True))


def test_adamw_is_the_default_and_8bit_adam_needs_bitsandbytes(tmp_path, prompts, monkeypatch):
    assert GRPOConfig().optimizer == "adamw" and optimizer_class("adamw") is torch.optim.AdamW
    assert type(_trainer(tmp_path / "a", prompts).optimizer) is torch.optim.AdamW
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # as where bitsandbytes is not installed
    message = "config key optimizer: adamw_8bit needs bitsandbytes, which is not installed: pip install bitsandbytes"
    with pytest.raises(EditRLError, match=message):
        optimizer_class("adamw_8bit")
    with pytest.raises(EditRLError, match=message):  # checked with the config, before any model loads
        small_config(GRPOConfig, tmp_path, optimizer="adamw_8bit").check_before_loading()
    with pytest.raises(EditRLError, match=r"config key optimizer: expected one of \('adamw', 'adamw_8bit'\), got 'adam8'"):
        small_config(GRPOConfig, tmp_path, optimizer="adam8").validate()


def test_8bit_adam_is_bitsandbytes_adamw8bit(tmp_path, prompts, monkeypatch):
    class AdamW8bit(torch.optim.AdamW):
        """Stands in for bitsandbytes.optim.AdamW8bit (same constructor)."""

    fake = types.ModuleType("bitsandbytes")
    fake.__spec__ = importlib.machinery.ModuleSpec("bitsandbytes", None)
    fake.optim = SimpleNamespace(AdamW8bit=AdamW8bit)
    monkeypatch.setitem(sys.modules, "bitsandbytes", fake)
    assert optimizer_class("adamw_8bit") is AdamW8bit
    trainer = _trainer(tmp_path, prompts, optimizer="adamw_8bit", learning_rate=0.02, adam_betas=[0.8, 0.9], weight_decay=0.5)
    assert type(trainer.optimizer) is AdamW8bit
    group = trainer.optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (0.02, (0.8, 0.9), 0.5)
    assert group["params"] == trainer.params


@pytest.mark.parametrize("n_prompts, world_size, batch_size, batches", [
    (8, 2, 4, None), (7, 2, 4, None),  # 4 and 3 prompts: one batch on each process
    (9, 2, 4, (2, 1)),  # 5 and 4 prompts: two batches and one
    (3, 4, 8, (1, 0)),  # 1, 1, 1 and 0 prompts: the last process would sample nothing
])
def test_fsdp_needs_as_many_evaluation_batches_on_every_process(n_prompts, world_size, batch_size, batches):
    trainer = RLTrainer.__new__(RLTrainer)
    trainer.accelerator = SimpleNamespace(num_processes=world_size, process_index=0)
    trainer.config = SimpleNamespace(batch_size=batch_size)
    trainer.eval_prompts = [None] * n_prompts
    if batches is None:
        trainer.check_eval_batches()
        return
    with pytest.raises(EditRLError, match=f"config key eval_prompts: under FSDP .* {n_prompts} prompts over {world_size} "
                                          f"processes in batches of {batch_size} give {batches[0]} and {batches[1]}; "
                                          f"use a multiple of {world_size} prompts"):
        trainer.check_eval_batches()


def test_an_fsdp_config_rl_cannot_use_is_one_line(tmp_path, prompts):
    """configs/accelerate/fsdp.yaml (the reward model's: Qwen2.5-VL layer classes) or fsdp_version 2 stop with one line."""
    from editrl.rl.memory import shard_denoiser

    editor = _trainer(tmp_path, prompts).editor

    def prepare_model(model):  # what accelerate raises for a layer class the model lacks
        raise ValueError("Could not find the transformer layer class Qwen2_5_VLDecoderLayer in the model.")

    plugin = SimpleNamespace(ignored_modules=None)
    accelerator = SimpleNamespace(is_fsdp2=False, device=torch.device("cpu"), state=SimpleNamespace(fsdp_plugin=plugin),
                                  prepare_model=prepare_model)
    with pytest.raises(EditRLError, match="accelerate config: Could not find the transformer layer class Qwen2_5_VLDecoderLayer "
                                          r"in the model. \(use configs/accelerate/fsdp_rl.yaml, which wraps"):
        shard_denoiser(accelerator, editor)
    assert plugin.ignored_modules and all(type(m).__name__ == "Linear" for m in plugin.ignored_modules)  # the LoRA layers
    assert len(plugin.ignored_modules) == sum(1 for n, _ in editor.transformer.named_modules() if n.endswith(("lora_A.default",
                                                                                                              "lora_B.default")))
    accelerator.is_fsdp2 = True
    with pytest.raises(EditRLError, match="accelerate config: fsdp_version 2; RL shards the denoiser with fsdp_version 1"):
        shard_denoiser(accelerator, editor)
