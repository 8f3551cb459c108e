"""LoRA plumbing for RL: add the adapter, switch it off for the reference, swap weights, EMA, save.

The reference policy of GRPO's KL and of offline DPO is the *same* denoiser with the LoRA adapter
disabled, so no second copy of a 12 B transformer is needed. Online DPO's refreshed reference and
the EMA weights are plain copies of the (small) LoRA tensors swapped in for one forward.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from ..errors import EditRLError


def add_lora(
    transformer: torch.nn.Module, rank: int, alpha: float, target_modules: list[str], init: str | bool = "gaussian"
) -> list[torch.nn.Parameter]:
    """Inject a peft LoRA adapter in place (diffusers ``add_adapter``); returns the trainable LoRA params.

    Everything else in the denoiser is frozen. ``init="gaussian"`` is the Flow-GRPO recipe (B is
    still zero, so the adapted model starts exactly at the base model).
    """
    from peft import LoraConfig

    transformer.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=init, target_modules=list(target_modules))
    try:
        transformer.add_adapter(config)
    except ValueError as err:
        raise EditRLError(f"lora_target_modules={list(target_modules)}: {err}") from None
    params = list(lora_parameters(transformer).values())
    for p in params:
        p.requires_grad_(True)
        p.data = p.data.float()  # LoRA weights (and their optimizer state) in fp32 even on a bf16 model
    return params


FSDP_PREFIX = "_fsdp_wrapped_module."
"""What FSDP inserts into the parameter names of each module it wraps (``editrl.rl.sharding``)."""


def lora_parameters(transformer: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The LoRA parameters by name, named as in the unwrapped denoiser even when FSDP wraps it (its prefix dropped), so
    EMA and reference copies, checkpoints and saved adapters are the same whether or not the denoiser is sharded."""
    return {name.replace(FSDP_PREFIX, ""): p for name, p in transformer.named_parameters() if "lora_" in name}


def lora_state(transformer: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the LoRA tensors, keyed by parameter name (``lora_parameters``)."""
    return {name: p.detach().clone() for name, p in lora_parameters(transformer).items()}


def load_lora_state(transformer: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = lora_parameters(transformer)
    missing = set(state) - set(params)
    if missing:
        raise EditRLError(f"LoRA state has tensors the model lacks (different lora_target_modules/rank?): {sorted(missing)[:3]}")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


@contextmanager
def adapter_disabled(transformer: torch.nn.Module) -> Iterator[None]:
    """The base model (LoRA off) inside the block: the reference policy."""
    transformer.disable_adapters()
    try:
        yield
    finally:
        transformer.enable_adapters()


@contextmanager
def swapped_lora(transformer: torch.nn.Module, state: dict[str, torch.Tensor]) -> Iterator[None]:
    """Other LoRA weights (EMA, a frozen reference copy) inside the block, the trained ones restored after."""
    saved = lora_state(transformer)
    load_lora_state(transformer, state)
    try:
        yield
    finally:
        load_lora_state(transformer, saved)


class LoraEMA:
    """Exponential moving average of the LoRA weights, used for evaluation and the saved adapter.

    As flow_grpo's ``EMAModuleWrapper.step(params, global_step)``: with n optimizer steps done (n = 1, 2, ...), the
    average moves when ``(n + 1) % every == 0`` (flow_grpo: ``update_step_interval`` 8, so after steps 7, 15, ...;
    DiffusionNFT: 1, every step) with the warm-up decay ``min((1 + n) / (10 + n), decay)``, so the first updates
    follow the fast-moving early weights instead of the LoRA's zero start. One deliberate difference: flow_grpo calls
    its ``step`` once per training batch, so with gradient accumulation a step n that qualifies moves the average once
    per accumulated batch; editrl calls it once per optimizer step, so the schedule does not depend on the batching.
    """

    def __init__(self, transformer: torch.nn.Module, decay: float, every: int = 1):
        self.decay, self.every = decay, every
        self.shadow = lora_state(transformer)
        self.steps = 0  # optimizer steps seen

    @property
    def first_update(self) -> int:
        """The optimizer step after which the average first moves (``step``'s rule)."""
        return max(self.every - 1, 1)

    @torch.no_grad()
    def step(self, transformer: torch.nn.Module) -> None:
        """After an optimizer step: move the average towards the current weights on every ``every``-th step."""
        self.steps += 1
        if (self.steps + 1) % self.every:
            return
        decay = min((1 + self.steps) / (10 + self.steps), self.decay)
        for name, p in lora_parameters(transformer).items():
            if name in self.shadow:
                self.shadow[name].lerp_(p.detach(), 1 - decay)

    def state_dict(self) -> dict:
        return {"shadow": self.shadow, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
        # a checkpoint from before ema_update_every counted "updates": one per optimizer step (every = 1), the same
        self.steps = int(state["steps"] if "steps" in state else state["updates"])


def save_lora(editor, directory: str | Path) -> Path:
    """Write the active LoRA of an editor's denoiser in diffusers format (``pytorch_lora_weights.safetensors``).

    The file loads with ``pipe.load_lora_weights`` / ``Editor.load_lora`` / ``editrl best-of-n --lora``. peft is given
    the LoRA parameters themselves, never the model's ``state_dict``: under FSDP that would be a collective gather of
    the whole sharded denoiser, which only the main process, the one that writes, would join. Its names are those of the
    module inside FSDP's outer wrapper, with the wrappers of the blocks' units (``_fsdp_wrapped_module.``) dropped:
    peft >= 0.22 matches the names to its LoRA layers without them, earlier versions only with them.
    """
    from accelerate.utils import extract_model_from_parallel
    from peft.utils import get_peft_model_state_dict

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = extract_model_from_parallel(editor.transformer)
    layers = get_peft_model_state_dict(model, state_dict={k: p.detach() for k, p in lora_parameters(model).items()})
    if not layers:  # peft < 0.22 keeps only the names as the wrapped blocks hold them
        wrapped = {name: p.detach() for name, p in model.named_parameters() if "lora_" in name}
        layers = {k.replace(FSDP_PREFIX, ""): v for k, v in get_peft_model_state_dict(model, state_dict=wrapped).items()}
    if not layers:
        raise EditRLError(f"{directory}: the editor's denoiser holds no LoRA layers to save")
    layers = {k: v.float().cpu().contiguous() for k, v in layers.items()}
    type(editor.pipe).save_lora_weights(str(directory), **{editor.lora_layers_key: layers})
    return directory
