"""Weights and optimizer memory of each editor for sampling and LoRA GRPO, at the released sizes: one JSON line each.

The models are built on torch's ``meta`` device (shapes only, nothing allocated, seconds on a laptop) from
``benchmarks/sizes.py``, wrapped in their editrl adapter, and LoRA is added with ``editrl.rl.lora.add_lora`` on the
adapter's own ``lora_target_modules``, so the counts are exactly what ``editrl grpo`` trains. Per editor:

- ``params_b``: parameters (billions) of the denoiser, the text encoder and the VAE;
- ``sampling_gib``: bf16 weights resident while sampling, everything on one GPU (``all``) or with the text encoder
  moved off after the prompts are encoded (``denoise``: denoiser + VAE);
- ``grpo_gib``: LoRA GRPO's weights and optimizer state per GPU at their peak: the frozen bf16 denoiser, VAE and text
  encoder, fp32 LoRA weights and gradients, and the optimizer's two moments, fp32 (``optimizer: adamw``) or 8-bit
  (``optimizer: adamw_8bit``, bitsandbytes' AdamW8bit); ``fsdp_N_*``: the frozen denoiser sharded over N GPUs
  (``configs/accelerate/fsdp_rl.yaml``): each GPU holds 1/N of it, plus, at most, the denoiser's layers outside its
  blocks and two whole blocks while FSDP has them gathered (the running unit and the prefetched one), the LoRA and its
  state replicated (``editrl.rl.memory``);
- ``training_gib``: the same while the training forwards and backwards run with ``offload_text_encoder: true``: the
  text encoder waits on the CPU then (more room for the activations), but it comes back for each encode while the rest
  stays, so the peak (``grpo_gib``) is unchanged: offloading alone never makes a model fit, sharding does;
- ``fits_80gb``: which peaks leave room on an 80 GB GPU (more than 10 % of it free for activations).

``NOT_BUILT`` editors print why they have no row. Activations are not here: they depend on the sequence length and on
gradient checkpointing, and are measured on a GPU by ``benchmarks/gpu_suite.py --parts new_editors`` (peak memory with
and without checkpointing).

    python benchmarks/editor_memory.py [--rank 64] [--sizes tiny]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import sizes  # noqa: E402

from editrl.rl.lora import add_lora  # noqa: E402
from editrl.sampler.editors import EDITORS  # noqa: E402

GIB = 2**30
GPU_GIB = 80e9 / GIB  # an "80 GB" GPU
# editor -> (its builder in sizes.py, the real size, the toy size)
EDITOR_SIZES = {
    "flux2-klein": (sizes.flux2, "klein-4b", "tiny-klein"),
    "qwen-image-edit-2511": (sizes.qwen_image_edit_plus, "2511", "tiny"),
    "flux2": (sizes.flux2, "dev", "tiny"),
}
FSDP_GPUS = (2, 4, 8)
NOT_BUILT = {
    "longcat-image-edit": "no real-size build: diffusers 0.42 documents LongCat-Image as 6B parameters with a "
    "Qwen2_5_VLForConditionalGeneration text encoder (the transformer's joint_attention_dim default, 3584, is "
    "Qwen2.5-VL-7B's hidden size), but its source does not give the released transformer's block counts: "
    "LongCatImageTransformer2DModel's defaults (19 double + 38 single blocks of 24 x 128) are FLUX.1's 12B, not the "
    "release; and editrl only samples it (LongCatImageEditPipeline cannot save LoRA), so it would have no GRPO rows",
}
"""Editors without a row, and why (printed as such)."""


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def gathered(denoiser) -> int:
    """The most denoiser parameters FSDP holds whole at once besides the shards (``fsdp_rl.yaml``: one unit per block
    class the denoiser names in ``_no_split_modules``): the root unit (everything outside the blocks) and two blocks,
    the running one and the one BACKWARD_PRE prefetches."""
    blocks = [m for m in denoiser.modules() if type(m).__name__ in denoiser._no_split_modules]
    return count(denoiser) - sum(count(b) for b in blocks) + 2 * max(count(b) for b in blocks)


def memory(name: str, size: str, rank: int) -> dict:
    """The memory record of editor ``name`` at ``size`` with LoRA rank ``rank`` (bf16 weights, fp32 LoRA)."""
    build = EDITOR_SIZES[name][0]
    pipe = build(size, "meta", torch.bfloat16)
    editor = EDITORS[name].adapter_class()(pipe)
    params = {"denoiser": count(pipe.transformer), "text_encoder": count(pipe.text_encoder), "vae": count(pipe.vae)}
    lora = sum(p.numel() for p in add_lora(pipe.transformer, rank, rank, editor.lora_target_modules))
    bf16 = {k: 2 * v / GIB for k, v in params.items()}
    lora_gib = (4 + 4) * lora / GIB  # fp32 weights and gradients
    states = {"adamw": 2 * 4 * lora / GIB, "adamw_8bit": 2 * 1 * lora / GIB}
    denoiser = {"": bf16["denoiser"], **{f"fsdp_{n}_": bf16["denoiser"] / n + 2 * gathered(pipe.transformer) / GIB
                                         for n in FSDP_GPUS}}
    training = {f"{where}{opt}": held + bf16["vae"] + lora_gib + state for where, held in denoiser.items()
                for opt, state in states.items()}
    grpo = {key: value + bf16["text_encoder"] for key, value in training.items()}
    sampling = {"all": sum(bf16.values()), "denoise": bf16["denoiser"] + bf16["vae"]}
    fits = {f"sampling_{k}": v < 0.9 * GPU_GIB for k, v in sampling.items()}
    fits.update({f"grpo_{k}": v < 0.9 * GPU_GIB for k, v in grpo.items()})
    return {
        "editor": name, "size": size, "lora_rank": rank, "lora_targets": editor.lora_target_modules,
        "params_b": {k: round(v / 1e9, 4) for k, v in params.items()}, "lora_params_m": round(lora / 1e6, 3),
        "sampling_gib": {k: round(v, 3) for k, v in sampling.items()}, "grpo_gib": {k: round(v, 3) for k, v in grpo.items()},
        "training_gib": {k: round(v, 3) for k, v in training.items()},
        "fits_80gb": fits, "activations": "not included; measured by gpu_suite.py --parts new_editors",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=64, help="LoRA rank (configs/grpo use 64 at real size)")
    parser.add_argument("--sizes", choices=("real", "tiny"), default="real", help="the released sizes, or the toys")
    args = parser.parse_args(argv)
    for name, (_, real, tiny) in EDITOR_SIZES.items():
        print(json.dumps(memory(name, real if args.sizes == "real" else tiny, args.rank)), flush=True)
    for name, reason in NOT_BUILT.items():
        print(json.dumps({"editor": name, "not_built": reason}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
