"""Every real-size GPU figure in one command: EditReward-7B, FLUX.1-Kontext best-of-8, RL, reward training.

Random weights at the released sizes (``benchmarks/sizes.py``; timing does not depend on the values),
built directly on the GPU in bf16. One JSON line per figure on stdout: a ``suite`` line first (device,
versions, budget), then ``{"part": ..., "figure": ..., ...}`` lines, then a ``suite: end`` line.
The parts, in the order they run (``--parts`` runs a subset):

- ``reward``: EditReward at Qwen2.5-VL-7B size, 448x448 images: edited images per second of the
  official two-pass path (``fast=False``) and the shared-prefix fast path at batch 8 and 32, the bf16
  score difference between them, peak memory. Goal: fast >= 25 img/s and >= 1.8x the official path.
- ``editor``: FLUX.1-Kontext size (12 B transformer, T5-XXL, CLIP-L, FLUX VAE): seconds per
  denoising step at 512x512 and 1024x1024 (one image); best-of-8 at 512x512, 28 steps, ranked by the
  7B EditReward: wall time and the reward's share of it (goal < 10 %); the pruned search (successive
  halving, 8 candidates, keep 1/2 over the first half of the steps) and the adaptive search (``--search
  adaptive`` with a quarter of best-of-8's NFE as its budget, to fit the suite's time; random weights have no
  score that means good, so it spends its budget) beside it: time against NFE shows the cost of its previews.
- ``rl``: GRPO at Kontext size with ``configs/grpo/flux-kontext.yaml`` (LoRA r=64, gradient
  checkpointing, 6 steps), one group of 4 at 512x512 rewarded by the 7B EditReward: seconds per
  iteration and peak memory. NFT the same way once ``editrl.rl`` has an ``NFTTrainer`` and
  ``configs/nft/flux-kontext.yaml`` exists (a skip note until then; see ``RL_ALGORITHMS``).
- ``reward_train``: one optimizer step (8 pairs: 2 per micro-batch x 4) of reward training at 7B with
  ``configs/reward/qwen2.5-vl-7b-lora.yaml`` (LoRA) and ``qwen2.5-vl-7b.yaml`` (full fine-tune,
  gradient checkpointing, fp32 master weights and AdamW state: run when its memory estimate fits the
  GPU, reported as not fitting when it runs out of memory): seconds per step and peak memory.
- ``new_editors`` (after the others, so the default budget leaves it skipped on a GPU: give it its own run,
  ``--parts new_editors``): per 2026 editor (FLUX.2 [klein] 4B,
  Qwen-Image-Edit-2511, FLUX.2 [dev]) at its default 1024x1024 in bf16: seconds per denoising step (all guidance
  branches) and sampling peak memory, then one LoRA GRPO iteration (r=64, a group of 2, a cheap reward so the
  figure is the editor's) with and without gradient checkpointing: seconds and peak memory, or "did not fit".
  An editor whose bf16 weights (``benchmarks/editor_memory.py``) would not leave 10 % of the GPU is skipped with
  that estimate (FLUX.2 [dev] on an 80 GB GPU: shard or offload it).

Each figure group first compares the time left of ``--budget`` (default 480 s, counted from the
script's start) with its estimate (``Scale.needs``) and is skipped with a ``skipped`` note when too
little is left. A part that fails prints an ``error`` line, the next part still runs, and the exit
code is 1. ``--tiny`` runs the same code paths (bf16 too) with toy models on the CPU in seconds (the test
``tests/test_gpu_suite.py`` does, so the script cannot rot).

Needs torch, transformers, accelerate, peft and diffusers (and editrl's own light dependencies:
numpy, pillow, pyyaml, tqdm, safetensors). The project's H200 machine has all but diffusers, and no
internet; diffusers is pure Python and its requirements are already there, so its wheel travels
with the working tree in an ignored ``.whl/`` folder. Here, once, in the repository root::

    echo /.whl/ >> .git/info/exclude
    python -m pip download --no-deps -d .whl diffusers==0.42.1

then the one command there (device tool: ``carry: [".whl"]``, ``timeout_s: 600``; the suite itself
keeps to its 480 s budget)::

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu_suite.py | tee $OUT/gpu.jsonl

On the CPU: ``python benchmarks/gpu_suite.py --tiny``.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # the budget counts the imports too

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]  # editrl and sizes.py, uninstalled

import editor_memory  # noqa: E402
import sizes  # noqa: E402

PARTS = ("reward", "editor", "rl", "reward_train", "new_editors")
ANCHOR_SECONDS_PER_IMAGE = 2.8  # FLUX.1-Kontext, 28 steps, one H100: the reference point for the sampling time
INSTRUCTION = "Replace the red car with a blue bicycle and keep the background unchanged."
# name: (trainer class in editrl.rl, its config class, folder of configs/<folder>/flux-kontext.yaml, extra overrides)
RL_ALGORITHMS = {
    "grpo": ("GRPOTrainer", "GRPOConfig", "grpo", ["num_minibatches=1"]),
    "nft": ("NFTTrainer", "NFTConfig", "nft", []),
}
# mode: the reward-training config it starts from
REWARD_TRAINING = {"lora": "qwen2.5-vl-7b-lora.yaml", "full": "qwen2.5-vl-7b.yaml"}


@dataclass(frozen=True)
class Scale:
    """What the real run and ``--tiny`` differ in: model sizes, counts, and time estimates. The code is the same."""

    reward_size: str
    editor_size: str
    pixels: int  # the reward's image area (official: 448 x 448)
    image_side: int  # side of the random images the reward scores
    prompt_tokens: int | None  # realistic_templates at this length; None: the short "world" templates
    reward_items: int  # edits scored per timed run
    reward_batches: tuple[int, ...]
    step_resolutions: tuple[int, ...]
    timed_steps: int
    resolution: int  # best-of-N and RL
    steps: int  # best-of-N denoising steps
    best_of: int
    rl_group: int
    rl_iterations: int  # the first is a warm-up; the last is reported
    train_rows: int  # synthetic comparisons for reward training
    train_steps: int  # optimizer steps timed (the first is a warm-up)
    needs: dict[str, float]  # seconds each figure group is expected to take on its machine, model builds included


REAL = Scale(
    reward_size="7b", editor_size="kontext", pixels=200704, image_side=448, prompt_tokens=500, reward_items=64,
    reward_batches=(8, 32), step_resolutions=(512, 1024), timed_steps=4, resolution=512, steps=28, best_of=8,
    rl_group=4, rl_iterations=2, train_rows=24, train_steps=2,
    needs={"reward": 60, "editor": 80, "pruned": 20, "adaptive": 12, "rl_grpo": 75, "rl_nft": 75, "train_lora": 50, "train_full": 60,
           "new_flux2-klein": 80, "new_qwen-image-edit-2511": 140, "new_flux2": 200},
)
TINY = Scale(
    reward_size="tiny", editor_size="tiny", pixels=56 * 56, image_side=64, prompt_tokens=None, reward_items=8,
    reward_batches=(2, 4), step_resolutions=(32, 64), timed_steps=2, resolution=32, steps=4, best_of=8,
    rl_group=2, rl_iterations=2, train_rows=16, train_steps=2,
    needs={"reward": 3, "editor": 3, "pruned": 2, "adaptive": 2, "rl_grpo": 3, "rl_nft": 3, "train_lora": 3, "train_full": 3,
           "new_flux2-klein": 5, "new_qwen-image-edit-2511": 5, "new_flux2": 5},
)
NEW_EDITOR_RUN = {"real": dict(resolution=1024, num_steps=2, lora_rank=64), "tiny": dict(resolution=32, num_steps=2, lora_rank=4)}
"""The new editors' resolution (their default), the GRPO rollout's steps (memory does not grow with them) and LoRA rank."""


# ----------------------------------------------------------------------------- plumbing
def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def sig(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant figures (small differences stay visible, long decimals do not)."""
    return float(f"{float(x):.{digits}g}")


def release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def fresh_accelerate_state() -> None:
    """Each trainer builds its own ``Accelerator`` (reward training: bf16 mixed precision, RL: none);
    accelerate keeps one process-wide state and refuses a second setting, so it is reset first."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


class Budget:
    """Seconds left of ``--budget`` (counted from the script's start) against each figure group's estimate."""

    def __init__(self, seconds: float, scale: Scale):
        self.seconds, self.scale = seconds, scale

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - START)

    def skip_note(self, key: str) -> str | None:
        need, left = self.scale.needs[key], self.left()
        if left >= need:
            return None
        return f"needs about {need:g} s, {max(left, 0):.0f} s left of the {self.seconds:g} s budget"


class Context:
    """What every part reads: the scale, device, dtype, budget, and the models they share.

    The reward and the editor pipeline are built once and shared by the parts that only run them
    (``reward``, ``editor``, ``rl``); reward training builds its own (it changes the model) after
    dropping them, so it has the whole GPU.
    """

    def __init__(self, scale: Scale, device: torch.device, dtype: torch.dtype, budget: Budget):
        self.scale, self.device, self.dtype, self.budget = scale, device, dtype, budget
        self._reward = self._pipe = None

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def clock(self) -> float:
        """Wall time after the device has finished what it was given."""
        if self.cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        """Peak GPU memory allocated since ``reset_peak`` (None on the CPU: not measured)."""
        return sig(torch.cuda.max_memory_allocated(self.device) / 2**30) if self.cuda else None

    def allocated_gib(self) -> float | None:
        return sig(torch.cuda.memory_allocated(self.device) / 2**30) if self.cuda else None

    def build_reward(self, part: str):
        """A fresh EditReward of the scale's size, its build time and size emitted as a figure."""
        scale = self.scale
        templates = sizes.realistic_templates(scale.prompt_tokens) if scale.prompt_tokens else "world"
        torch.manual_seed(0)
        start = self.clock()
        reward = sizes.editreward(scale.reward_size, self.device, self.dtype, scale.pixels, templates)
        self._emit_build(part, f"editreward-{scale.reward_size}", reward, self.clock() - start)
        return reward

    def reward(self, part: str):
        if self._reward is None:
            self._reward = self.build_reward(part)
        return self._reward

    def pipe(self, part: str):
        if self._pipe is None:
            torch.manual_seed(0)
            start = self.clock()
            self._pipe = sizes.flux_kontext(self.scale.editor_size, self.device, self.dtype)
            modules = (self._pipe.transformer, self._pipe.text_encoder_2, self._pipe.text_encoder, self._pipe.vae)
            self._emit_build(part, f"flux-kontext-{self.scale.editor_size}", modules, self.clock() - start)
        return self._pipe

    def drop_models(self) -> None:
        self._reward = self._pipe = None
        release()

    def _emit_build(self, part: str, model: str, modules, seconds: float) -> None:
        modules = modules if isinstance(modules, tuple) else (modules,)
        params = [p for m in modules for p in m.parameters()]
        emit({"part": part, "figure": "build", "model": model, "seconds": sig(seconds),
              "params_b": sig(sum(p.numel() for p in params) / 1e9),
              "weights_gib": sig(sum(p.numel() * p.element_size() for p in params) / 2**30)})


class TimedReward:
    """A reward that adds up the (synchronised) seconds spent in its ``score``: the reward's share of a run."""

    def __init__(self, reward, ctx: Context):
        self.reward, self.ctx, self.seconds = reward, ctx, 0.0

    def score(self, *args, **kwargs):
        start = self.ctx.clock()
        out = self.reward.score(*args, **kwargs)
        self.seconds += self.ctx.clock() - start
        return out


def random_images(n: int, side: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n)]


# ----------------------------------------------------------------------------- parts
def part_reward(ctx: Context) -> None:
    """Official two-pass against fast shared-prefix scoring, per batch size, on the same edits."""
    scale = ctx.scale
    reward = ctx.reward("reward")
    n = scale.reward_items
    sources, edits = random_images(n, scale.image_side, 1), random_images(n, scale.image_side, 2)
    instructions = [INSTRUCTION] * n
    ctx.reset_peak()
    for batch in scale.reward_batches:
        outputs, rates = {}, {}
        for path, fast in (("official", False), ("fast", True)):
            reward.score(sources[:batch], instructions[:batch], edits[:batch], batch_size=batch, fast=fast)  # warm-up
            start = ctx.clock()
            outputs[path] = reward.score(sources, instructions, edits, batch_size=batch, fast=fast)
            seconds = ctx.clock() - start
            rates[path] = n / seconds
            emit({"part": "reward", "figure": "scoring", "path": path, "batch_size": batch, "items": n,
                  "seconds": sig(seconds), "images_per_s": sig(rates[path])})
        diff = (outputs["fast"].score - outputs["official"].score).abs()
        speedup = rates["fast"] / rates["official"]
        emit({"part": "reward", "figure": "fast_vs_official", "batch_size": batch, "dtype": str(ctx.dtype).removeprefix("torch."),
              "speedup": sig(speedup), "max_abs_score_diff": sig(diff.max()), "mean_abs_score_diff": sig(diff.mean()),
              "score_std": sig(outputs["official"].score.std()),
              "goal": "fast >= 25 img/s and >= 1.8x official", "met": bool(rates["fast"] >= 25 and speedup >= 1.8)})
    emit({"part": "reward", "figure": "peak_memory", "peak_memory_gib": ctx.peak_gib(), "image": f"{scale.image_side}x{scale.image_side}",
          "pixels": scale.pixels})


def part_editor(ctx: Context) -> None:
    """Seconds per denoising step, best-of-N with the reward's share, the pruned and the adaptive search."""
    from editrl.sampler import HalvingConfig, best_of_n
    from editrl.sampler.adaptive import AdaptiveConfig
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.sampler.editors.base import denoise

    scale = ctx.scale
    pipe = ctx.pipe("editor")
    source = random_images(1, max(scale.step_resolutions))[0]
    for resolution in scale.step_resolutions:
        editor = FluxKontextEditor(pipe, resolution=resolution)
        cond = editor.encode([source], [INSTRUCTION])
        sigmas = editor.sigmas(scale.timed_steps)
        x = editor.initial_noise([0])
        with torch.no_grad():
            denoise(editor.velocity, x, cond, sigmas[:2])  # warm-up: the first step
            start = ctx.clock()
            denoise(editor.velocity, x, cond, sigmas)
            seconds = (ctx.clock() - start) / scale.timed_steps
        tokens = 2 * x.shape[1] + cond.batched["prompt_embeds"].shape[1]  # target + source latents + text
        emit({"part": "editor", "figure": "denoising_step", "resolution": resolution, "batch_size": 1,
              "sequence_tokens": tokens, "seconds_per_step": sig(seconds)})

    editor = FluxKontextEditor(pipe, resolution=scale.resolution, default_steps=scale.steps)
    reward = TimedReward(ctx.reward("editor"), ctx)
    n = scale.best_of
    best_of_n(editor, reward, source, INSTRUCTION, n=2, num_steps=2)  # warm-up at this resolution
    searches = {"best_of_n": dict(search="full"),
                # 8/0.5 of benchmarks/best_of_n.py: the world's best pruned setting (best-of-8's score at 0.45x its NFE)
                "pruned_search": dict(search="halving", halving=HalvingConfig(keep=0.5, horizon=0.5)),
                "adaptive_search": dict(search="adaptive", adaptive=AdaptiveConfig(budget=n * scale.steps * editor.nfe_per_step // 4))}
    full = None
    for figure, options in searches.items():
        key = {"pruned_search": "pruned", "adaptive_search": "adaptive"}.get(figure)
        if key and (note := ctx.budget.skip_note(key)):
            emit({"part": "editor", "figure": figure, "skipped": note})
            continue
        reward.seconds = 0.0
        ctx.reset_peak()
        start = ctx.clock()
        result = best_of_n(editor, reward, source, INSTRUCTION, n=n, num_steps=scale.steps, batch_size=n, reward_batch_size=n, **options)
        seconds = ctx.clock() - start
        record = {"part": "editor", "figure": figure, "n": n, "resolution": scale.resolution, "steps": scale.steps,
                  "nfe": result.nfe, "reward_calls": result.reward_calls, "seconds": sig(seconds),
                  "reward_seconds": sig(reward.seconds), "reward_share": sig(reward.seconds / seconds),
                  "peak_memory_gib": ctx.peak_gib()}
        if full is None:
            full = record
            sampling = (seconds - reward.seconds) / n
            record.update(seconds_per_image=sig(sampling), anchor_seconds_per_image=ANCHOR_SECONDS_PER_IMAGE,
                          goal="reward share < 10%", met=bool(reward.seconds / seconds < 0.1))
        else:
            record.update(nfe_ratio=sig(result.nfe / full["nfe"]), time_ratio=sig(seconds / full["seconds"]))
        if result.adaptive is not None:
            record.update(n=len(result.candidates), rounds=len(result.adaptive["rounds"]), budget=result.adaptive["budget"],
                          stopped_because=result.adaptive["stopped_because"])
        emit(record)


def part_rl(ctx: Context) -> None:
    """Seconds per iteration and peak memory of each RL algorithm editrl offers, on the shared editor."""
    import editrl.rl
    from editrl.config import load_config
    from editrl.sampler.editors import FluxKontextEditor

    scale = ctx.scale
    prompts = [(random_images(1, scale.resolution, 3)[0], INSTRUCTION)]
    for name, (trainer_name, config_name, folder, extra) in RL_ALGORITHMS.items():
        trainer_cls, config_cls = getattr(editrl.rl, trainer_name, None), getattr(editrl.rl, config_name, None)
        path = ROOT / "configs" / folder / "flux-kontext.yaml"
        if trainer_cls is None or config_cls is None or not path.is_file():
            emit({"part": "rl", "figure": "iteration", "algorithm": name,
                  "skipped": f"editrl.rl has no {trainer_name}/{config_name} or there is no {path.relative_to(ROOT)} yet"})
            continue
        if note := ctx.budget.skip_note(f"rl_{name}"):
            emit({"part": "rl", "figure": "iteration", "algorithm": name, "skipped": note})
            continue
        pipe = ctx.pipe("rl")
        reward = TimedReward(ctx.reward("rl"), ctx)
        k = scale.rl_group
        with tempfile.TemporaryDirectory() as out:
            config = load_config(config_cls, path, [
                f"resolution={scale.resolution}", f"device={ctx.device}", f"num_iterations={scale.rl_iterations}",
                "groups_per_step=1", f"group_size={k}", f"batch_size={k}", "eval_every=0", "judge=null", f"output_dir={out}",
            ] + extra)
            fresh_accelerate_state()
            trainer = trainer_cls(config, editor=FluxKontextEditor(pipe, resolution=scale.resolution), reward=reward,
                                  train_prompts=prompts, eval_prompts=prompts)
            resident = ctx.allocated_gib()
            ctx.reset_peak()
            times, reward_times = [], []
            for step in range(scale.rl_iterations):
                reward.seconds = 0.0
                start = ctx.clock()
                trainer.iteration(step)
                times.append(ctx.clock() - start)
                reward_times.append(reward.seconds)
            emit({"part": "rl", "figure": "iteration", "algorithm": name, "resolution": scale.resolution, "group_size": k,
                  "num_steps": config.num_steps, "lora_rank": config.lora_rank, "gradient_checkpointing": config.gradient_checkpointing,
                  "lora_params_m": sig(sum(p.numel() for p in trainer.params) / 1e6),
                  "seconds_per_iteration": sig(times[-1]), "seconds_first_iteration": sig(times[0]),
                  "reward_seconds_per_iteration": sig(reward_times[-1]),
                  "resident_gib": resident, "peak_memory_gib": ctx.peak_gib()})
        del trainer
        pipe.transformer.delete_adapters("default")  # the next algorithm starts from the plain transformer
        release()


def part_reward_train(ctx: Context) -> None:
    """One optimizer step of reward training per mode, each on a fresh model with the GPU to itself."""
    from editrl.reward.train import RewardTrainer
    from editrl.reward.train_config import load_config

    scale = ctx.scale
    ctx.drop_models()
    for mode, config_file in REWARD_TRAINING.items():
        if note := ctx.budget.skip_note(f"train_{mode}"):
            emit({"part": "reward_train", "figure": "step", "mode": mode, "skipped": note})
            continue
        reward = ctx.build_reward("reward_train")
        estimate = None
        if mode == "full" and ctx.cuda:  # fp32 weights, grads and two AdamW moments of all but the LM head
            trainable = sum(p.numel() for p in reward.parameters()) - reward.lm_head.weight.numel()
            estimate = trainable * 16 / 2**30
            total = torch.cuda.get_device_properties(ctx.device).total_memory / 2**30
            if estimate > 0.95 * total:
                emit({"part": "reward_train", "figure": "step", "mode": mode, "estimate_gib": sig(estimate),
                      "skipped": f"does not fit: about {estimate:.0f} GiB of fp32 weights, grads and AdamW state, {total:.0f} GiB on the GPU"})
                del reward
                release()
                continue
        with tempfile.TemporaryDirectory() as out:
            config = load_config(ROOT / "configs" / "reward" / config_file, [
                f"data.train={{format: synthetic, num_rows: {scale.train_rows}, size: {scale.image_side}}}", "data.validation=null",
                "data.num_workers=0", f"output_dir={out}", "report_to=none", f"max_steps={scale.train_steps}",
                "mixed_precision=" + ("bf16" if ctx.dtype == torch.bfloat16 else "'no'"),  # quoted: YAML reads no as false
            ])
            fresh_accelerate_state()
            record = {"part": "reward_train", "figure": "step", "mode": mode,
                      "pairs_per_step": config.per_device_batch_size * config.gradient_accumulation_steps,
                      "gradient_checkpointing": config.model.gradient_checkpointing,
                      "lora_rank": config.model.lora.r if config.model.lora else None}
            ctx.reset_peak()
            try:
                trainer = RewardTrainer(config, model=reward)
                loader = trainer.micro_batches(0)
                times = []
                for step in range(scale.train_steps):
                    start = ctx.clock()
                    loss = trainer.optimizer_step(loader, step)
                    times.append(ctx.clock() - start)
                record.update(trainable_params_b=sig(sum(p.numel() for p in reward.parameters() if p.requires_grad) / 1e9),
                              seconds_per_step=sig(times[-1]), seconds_first_step=sig(times[0]), loss=sig(loss),
                              peak_memory_gib=ctx.peak_gib())
            except torch.OutOfMemoryError:
                record.update(skipped="did not fit: out of GPU memory", peak_memory_gib=ctx.peak_gib())
            if estimate is not None:
                record["estimate_gib"] = sig(estimate)
            emit(record)
            trainer = loader = reward = None
            release()


class Brightness:
    """A reward costing nothing next to the editor (mean pixel value): the GRPO figures are the editor's own."""

    def score(self, sources, instructions, edits, batch_size=None):
        from editrl.reward.output import RewardOutput

        s = torch.tensor([float(np.asarray(e, dtype=np.float32).mean()) / 255 for e in edits])
        return RewardOutput(mu=s[:, None].repeat(1, 2), sigma=torch.zeros(len(s), 2), score=s, score_sigma=torch.zeros(len(s)))


def part_new_editors(ctx: Context) -> None:
    """Per new editor: sampling step time and memory, and a LoRA GRPO iteration with and without checkpointing."""
    from editrl.config import load_config
    from editrl.rl import GRPOConfig, GRPOTrainer
    from editrl.sampler.editors import EDITORS

    tiny = ctx.scale.editor_size == "tiny"
    run = NEW_EDITOR_RUN["tiny" if tiny else "real"]
    for name, (build, real, toy) in editor_memory.EDITOR_SIZES.items():
        size = toy if tiny else real
        if note := ctx.budget.skip_note(f"new_{name}"):
            emit({"part": "new_editors", "editor": name, "skipped": note})
            continue
        weights = editor_memory.memory(name, size, run["lora_rank"])["sampling_gib"]["all"]
        if ctx.cuda and weights > 0.9 * torch.cuda.get_device_properties(ctx.device).total_memory / 2**30:
            emit({"part": "new_editors", "editor": name, "weights_gib": weights,
                  "skipped": "its bf16 weights leave under 10 % of this GPU: shard the denoiser (FSDP) or offload the text encoder"})
            continue
        torch.manual_seed(0)
        start = ctx.clock()
        pipe = build(size, ctx.device, ctx.dtype)
        ctx._emit_build("new_editors", f"{name}-{size}", (pipe.transformer, pipe.text_encoder, pipe.vae), ctx.clock() - start)
        spec = EDITORS[name]
        editor = spec.adapter_class()(pipe, **{**dict(spec.settings), "resolution": run["resolution"]})  # its defaults
        source = random_images(1, run["resolution"], 5)[0]
        ctx.reset_peak()
        with torch.no_grad():
            cond = editor.encode([source], [INSTRUCTION])
            x, sigmas = editor.initial_noise([0], cond.size), editor.sigmas(ctx.scale.timed_steps + 1, cond.size)
            editor.velocity(x, sigmas[:1], cond)  # warm-up
            start = ctx.clock()
            for i in range(ctx.scale.timed_steps):
                editor.velocity(x, sigmas[i:i + 1], cond)
            per_step = (ctx.clock() - start) / ctx.scale.timed_steps
            editor.decode(x, cond.size)
        emit({"part": "new_editors", "figure": "sampling", "editor": name, "resolution": run["resolution"],
              "nfe_per_step": editor.step_nfe(cond), "default_steps": editor.default_steps, "seconds_per_step": sig(per_step),
              "seconds_per_image": sig(per_step * editor.default_steps), "peak_memory_gib": ctx.peak_gib()})
        prompts = [(source, INSTRUCTION)]
        for checkpointing in (True, False):
            record = {"part": "new_editors", "figure": "grpo_iteration", "editor": name, "resolution": run["resolution"],
                      "gradient_checkpointing": checkpointing, "lora_rank": run["lora_rank"], "group_size": 2,
                      "num_steps": run["num_steps"]}
            with tempfile.TemporaryDirectory() as out:
                config = load_config(GRPOConfig, ROOT / "configs" / "grpo" / "flux-kontext.yaml", [
                    f"resolution={run['resolution']}", f"device={ctx.device}", f"num_steps={run['num_steps']}",
                    f"lora_rank={run['lora_rank']}", f"lora_alpha={run['lora_rank']}", "groups_per_step=1", "group_size=2",
                    "batch_size=2", "num_minibatches=1", "eval_every=0", "judge=null", f"output_dir={out}",
                    f"gradient_checkpointing={str(checkpointing).lower()}", "num_iterations=2",
                ])
                fresh_accelerate_state()
                try:
                    trainer = GRPOTrainer(config, editor=editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)
                    ctx.reset_peak()
                    trainer.iteration(0)  # warm-up
                    start = ctx.clock()
                    trainer.iteration(1)
                    record.update(seconds_per_iteration=sig(ctx.clock() - start), peak_memory_gib=ctx.peak_gib(),
                                  lora_params_m=sig(sum(p.numel() for p in trainer.params) / 1e6))
                except torch.OutOfMemoryError:
                    record.update(skipped="did not fit: out of GPU memory", peak_memory_gib=ctx.peak_gib())
            emit(record)
            trainer = None
            if "default" in getattr(pipe.transformer, "peft_config", {}):
                pipe.transformer.delete_adapters("default")  # the next run starts from the plain transformer
            pipe.transformer.disable_gradient_checkpointing()
            release()
        editor = pipe = cond = None
        release()


PART_FUNCTIONS = {"reward": part_reward, "editor": part_editor, "rl": part_rl, "reward_train": part_reward_train,
                  "new_editors": part_new_editors}
PART_NEEDS = {"reward": "reward", "editor": "editor", "rl": "rl_grpo", "reward_train": "train_lora",
              "new_editors": "new_flux2-klein"}  # the first figure's estimate


# ----------------------------------------------------------------------------- command line
class OneLineParser(argparse.ArgumentParser):
    """Bad arguments: one line naming them (no usage block), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="gpu_suite.py", description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), metavar="PART",
                        help=f"the parts to run, in the suite's order whatever the order given (default: all of {', '.join(PARTS)})")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole run; figures that would overrun are skipped (default 480)")
    parser.add_argument("--tiny", action="store_true", help="toy models on the CPU: the same code paths in seconds")
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"),
                        help="weights and compute (default bfloat16, with --tiny too: the GPU run's code path)")
    args = parser.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"--parts: unknown part {unknown[0]!r}; expected some of {', '.join(PARTS)}")
    if len(set(args.parts)) != len(args.parts):
        parser.error(f"--parts: a part is named twice in {' '.join(args.parts)}")
    if not args.budget > 0:
        parser.error(f"--budget: expected a positive number of seconds, got {args.budget:g}")
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device: not a torch device: {args.device!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is visible (the real sizes need one; --tiny runs on the CPU)")
    if not args.tiny and device.type != "cuda":
        parser.error(f"--device {args.device}: the real sizes (7B reward, 12B editor) need a CUDA GPU; --tiny runs on the CPU")
    args.device = device
    args.dtype = getattr(torch, args.dtype)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import diffusers
    import peft
    import transformers

    scale = TINY if args.tiny else REAL
    parts = [p for p in PARTS if p in args.parts]
    ctx = Context(scale, args.device, args.dtype, Budget(args.budget, scale))
    emit({"suite": "gpu_suite", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
          "device": torch.cuda.get_device_name(args.device) if ctx.cuda else "cpu", "tiny": args.tiny,
          "dtype": str(args.dtype).removeprefix("torch."), "budget_s": args.budget, "parts": parts,
          "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "diffusers": diffusers.__version__,
                       "peft": peft.__version__}})
    ran, skipped, failed = [], [], []
    for part in parts:
        if note := ctx.budget.skip_note(PART_NEEDS[part]):
            emit({"part": part, "skipped": note})
            skipped.append(part)
            continue
        try:
            PART_FUNCTIONS[part](ctx)
            ran.append(part)
        except Exception as err:  # one part's failure must not cost the others' figures
            emit({"part": part, "error": f"{type(err).__name__}: {err}".splitlines()[0][:500]})
            failed.append(part)
            release()
    seconds = time.perf_counter() - START
    emit({"suite": "end", "seconds": sig(seconds), "within_budget": seconds <= args.budget,
          "ran": ran, "skipped": skipped, "failed": failed})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
