"""What lets RL train an editor too large for one accelerator: the frozen denoiser sharded over the processes with
accelerate's FSDP, and the optimizer (8-bit Adam keeps a quarter of AdamW's state). The third option, the text
encoders off the accelerator between encodes, is ``Editor.offload_text_encoders``.

Under ``accelerate launch --config_file configs/accelerate/fsdp_rl.yaml`` accelerate's ``distributed_type`` is FSDP and
``shard_denoiser`` wraps the denoiser with accelerate's own ``prepare_model`` (torch's FullyShardedDataParallel, one
unit per transformer block): each process keeps 1/N of the frozen base weights and gathers a block's weights from the
others just before it runs. The LoRA layers are FSDP's ``ignored_modules``: LoRA is small, so every process keeps all of
it in fp32 (FSDP flattens one dtype per unit, and the base is bf16), and ``RLTrainer.optimizer_step`` averages its
gradients across processes as it does without FSDP; the saved adapter, checkpoints and EMA need no gather.
Every forward and backward of the sharded denoiser is a collective, so every process must run the same ones:
``RLTrainer.runs_forward`` and ``forward_rounds`` make the algorithms' loops agree.
"""

from __future__ import annotations

import torch

from ..errors import EditRLError
from .config import check_optimizer_installed

FSDP_CONFIG = "configs/accelerate/fsdp_rl.yaml"


def lora_modules(denoiser: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules that own trainable parameters directly: peft's LoRA ``Linear`` layers after ``add_lora``."""
    return [m for m in denoiser.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]


def shard_denoiser(accelerator, editor) -> None:
    """Wrap ``editor``'s denoiser (LoRA added) with accelerate's FSDP and install the wrapper in the editor; the rest of the
    pipeline goes to the accelerator, except text encoders the editor keeps offloaded.

    The editor may be loaded on the CPU: FSDP moves each unit to the device as it shards it, so the whole denoiser
    never has to fit on one accelerator. The LoRA modules are moved here, because FSDP leaves the modules it ignores
    where they are."""
    if accelerator.is_fsdp2:  # accelerate prepares FSDP2 only with the optimizer, and shards every parameter, LoRA too
        raise EditRLError(f"accelerate config: fsdp_version 2; RL shards the denoiser with fsdp_version 1 ({FSDP_CONFIG})")
    denoiser = editor.transformer
    lora = lora_modules(denoiser)
    for module in lora:
        module.to(accelerator.device)
    accelerator.state.fsdp_plugin.ignored_modules = lora
    try:
        editor.transformer = accelerator.prepare_model(denoiser)
    except ValueError as err:  # e.g. fsdp_transformer_layer_cls_to_wrap naming a class the denoiser does not have
        raise EditRLError(f"accelerate config: {err} (use {FSDP_CONFIG}, which wraps the denoiser's own blocks)") from None
    offloaded = editor.text_encoders if editor.text_encoders_offloaded else []
    for module in editor.pipe.components.values():
        if isinstance(module, torch.nn.Module) and module is not editor.transformer and not any(module is m for m in offloaded):
            module.to(accelerator.device)


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The optimizer of the config key ``optimizer``: torch's AdamW, or bitsandbytes' AdamW8bit (8-bit moments,
    block-wise quantised; tensors under 4096 elements keep 32-bit state), checked installed first."""
    if name == "adamw":
        return torch.optim.AdamW
    check_optimizer_installed(name)
    import bitsandbytes

    return bitsandbytes.optim.AdamW8bit
