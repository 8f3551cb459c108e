"""What GRPO and DPO share: building the editor/LoRA/rewards, prompts, evaluation with the judge,
the training loop shell (progress bar, JSONL log, checkpoints, resume) and multi-process plumbing.

The algorithms themselves live in ``grpo.py`` and ``dpo.py`` (``RLTrainer.iteration``); this file is
only the loop around them. Multi-process runs use accelerate: each process draws its own groups,
rewards are gathered so advantages use global statistics, and LoRA gradients are averaged across
processes before every optimizer step (LoRA is small, so this is the DDP all-reduce without
wrapping the denoiser). Under accelerate's FSDP (``configs/accelerate/fsdp_rl.yaml``) the frozen denoiser is
also sharded over the processes (``memory.shard_denoiser``); the LoRA stays whole on each, as without it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..errors import EditRLError
from ..files import atomic_folder
from ..images import check_instruction, load_source
from ..registry import PROMPT_SETS
from ..reward.output import RewardFunction, sources_for
from ..reward.specs import build_reward
from ..runs import (
    STATE_FILE,
    JsonlLog,
    check_run_folder,
    finish_trackers,
    load_checkpoint,
    log_images,
    save_checkpoint,
    tracker_config,
    trackers,
    write_config,
)
from ..sampler.editors.base import denoise, euler_step, split_sources
from ..tables import image_cell, read_rows
from .advantages import Advantages, compute_advantages
from .config import LOG_FILE, RLConfig, check_prompt_source
from .lora import LoraEMA, add_lora, load_lora_state, lora_state, save_lora, swapped_lora
from .memory import optimizer_class, shard_denoiser
from .monitor import HackingMonitor
from .plots import GRID_PROMPTS, curves_figure, eval_grid, render
from .rewards import WeightedReward, build_weighted_reward
from .scoring import RolloutScoring
from .sde import SDESampler

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# keys a resumed run may change: they cannot change what is learned (logging, how long to train, where to write)
MAY_CHANGE_ON_RESUME = ("num_iterations", "eval_every", "save_every", "keep_checkpoints", "report_to", "output_dir",
                        "overlap_reward", "offload_text_encoder",
                        "monitor_window", "monitor_min_rise", "monitor_min_fall")
TRAIN_TIMESTEPS = 1000
RANDOM_STREAMS = ("prompts", "window", "trained_steps", "timesteps")


def load_prompts(spec: str, n: int, split: str, seed: int, size: int) -> list[tuple[Image.Image, str]]:
    """(source, instruction) pairs: ``n`` examples of a registered prompt set (the world registers ``world``),
    or every row of a table (JSONL/Parquet/Arrow file or folder, ``editrl.tables``) with 'source' and 'instruction'."""
    path = Path(spec)
    check_prompt_source(spec)
    if not path.exists():
        return PROMPT_SETS[spec](n, split, seed, size)
    prompts = []
    for row in read_rows(path):
        where = row["_where"]
        if "source" not in row or "instruction" not in row:
            raise EditRLError(f"{where}: expected 'source' and 'instruction' columns")
        source = load_source(image_cell(row["source"], row["_base"]), f"{where} source")
        prompts.append((source, check_instruction(row["instruction"], where)))
    if not prompts:
        raise EditRLError(f"data {spec!r}: no prompts in the table")
    return prompts[:n] if split == "test" else prompts


def equal_sample_weight(n_here: int, n_all: int, world_size: int) -> float:
    """Weight of a loss averaged over ``n_here`` local samples so that, after the gradients are averaged
    across ``world_size`` processes, each of the ``n_all`` samples of all processes counts equally (a
    process with fewer kept samples does not weigh each of them more)."""
    return n_here * world_size / max(n_all, 1)


def bar_disabled(main_process: bool) -> bool | None:
    """tqdm's ``disable`` for the RL progress bars: off on all but the main process and under ``editrl -q`` (logging
    configured above INFO); otherwise None, tqdm's own rule: off when stderr is not a terminal (a log file)."""
    quiet = bool(logging.getLogger().handlers) and logger.getEffectiveLevel() > logging.INFO
    return True if not main_process or quiet else None


class RLTrainer:
    """Base of ``GRPOTrainer`` and ``DPOTrainer``.

    Args:
        config: the trainer's config dataclass.
        editor: an ``editrl.sampler.editors.Editor``; built from ``config.editor``/``model`` if None.
        reward: the training ``RewardFunction``; built from ``config.rewards`` if None.
        judge: the held-out ``RewardFunction`` of the monitor; built from ``config.judge`` if None.
        train_prompts / eval_prompts: lists of (source, instruction); built from the config if None.
        accelerator: an ``accelerate.Accelerator``; a default one if None.
    """

    def __init__(
        self,
        config: RLConfig,
        editor=None,
        reward: RewardFunction | None = None,
        judge: RewardFunction | None = None,
        train_prompts: list[tuple[Any, str]] | None = None,
        eval_prompts: list[tuple[Any, str]] | None = None,
        accelerator=None,
    ):
        from accelerate import Accelerator
        from accelerate.utils import DistributedType

        config.validate()
        self.config = config
        # cpu=True is what makes accelerate set up gloo for several CPU processes
        self.accelerator = accelerator or Accelerator(cpu=config.device == "cpu" or not torch.cuda.is_available(),
                                                      log_with=trackers(config.report_to) or None, project_dir=config.output_dir)
        self.sharded = self.accelerator.distributed_type == DistributedType.FSDP
        if not self.sharded and os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
            logger.warning("launched with an FSDP config, but accelerate did not select FSDP (distributed type %s; it does on "
                           "GPUs only): each process holds the whole denoiser", self.accelerator.distributed_type.value)
        device = torch.device(config.device) if config.device else self.accelerator.device
        if editor is None:
            from ..sampler.editors import default_device_dtype, load_editor

            settings = {**({"resolution": config.resolution} if config.resolution else {}), **config.editor_settings}
            dtype = DTYPES.get(config.dtype) or default_device_dtype(device, None)[1]
            # sharded: loaded on the CPU, FSDP moves each process's shard of the denoiser to its accelerator
            editor = load_editor(config.editor, model=config.model, device="cpu" if self.sharded else device, dtype=dtype,
                                 **settings)
        from ..sampler.editors import check_lora_trainable

        check_lora_trainable(type(editor.pipe), f"editor {editor.label}")  # also for an editor object passed in
        self.editor = editor
        editor.transformer.eval()  # no dropout: rollout and training forwards must be identical
        if config.gradient_checkpointing:
            editor.transformer.enable_gradient_checkpointing()
        targets = config.lora_target_modules or editor.lora_target_modules
        torch.manual_seed(config.seed)  # the LoRA init
        self.params = add_lora(editor.transformer, config.lora_rank, config.lora_alpha, targets, config.lora_init)
        if self.world_size > 1:  # every process starts from rank 0's LoRA, then sees the same averaged grads
            from accelerate.utils import broadcast

            with torch.no_grad():
                for p in self.params:
                    p.copy_(broadcast(p.detach().to(self.accelerator.device), from_process=0).to(p.device))
        if config.offload_text_encoder:
            editor.offload_text_encoders()
        if self.sharded:
            shard_denoiser(self.accelerator, editor)
        self.transformer = editor.transformer  # the FSDP wrapper when sharded: every forward goes through it
        self.optimizer = optimizer_class(config.optimizer)(
            self.params, lr=config.learning_rate, betas=tuple(config.adam_betas), weight_decay=config.weight_decay
        )
        self.ema = LoraEMA(self.transformer, config.ema_decay, config.ema_update_every) if config.ema_decay > 0 else None
        optimizer_steps = config.num_iterations * getattr(config, "num_minibatches", 1)
        if self.ema is not None and optimizer_steps < self.ema.first_update:
            logger.warning("ema_update_every=%d but the run makes %d optimizer steps: the EMA weights, which are evaluated "
                           "and saved, stay the initial LoRA (set ema_update_every or ema_decay=0)",
                           config.ema_update_every, optimizer_steps)
        # what the log lines call the rewards: the config's specs, or the class of an object passed in
        self.reward_name = type(reward).__name__ if reward is not None else ", ".join(config.rewards)
        self.judge_name = type(judge).__name__ if judge is not None else config.judge
        self.reward = reward or build_weighted_reward(config.rewards, device, concurrent=config.overlap_reward)
        # one worker: rollout chunks are scored in order, never two calls into one reward model at once
        self.reward_executor = ThreadPoolExecutor(1, thread_name_prefix="editrl-reward") if config.overlap_reward else None
        self.last_scoring: RolloutScoring | None = None  # the last iteration's timings (benchmarks/rl_throughput.py)
        if judge is None and config.judge:
            judge = build_reward(config.judge, device)
        self.judge = judge
        size = editor.resolution
        self.train_prompts = train_prompts or load_prompts(config.train_data, config.world_train_examples, "train", config.seed, size)
        self.eval_prompts = (eval_prompts or load_prompts(config.eval_data, config.eval_prompts, "test", config.seed, size))[
            : config.eval_prompts
        ]
        # the exact target scenes of the world's evaluation prompts: exact-edit and lost-object shares
        # a judge may measure more than its score (the world oracle: the shares of exact edits and lost objects)
        self.measure_names = tuple(getattr(judge, "measure_names", ())) if judge is not None else ()
        if self.sharded and config.eval_every:
            self.check_eval_batches()
        self.monitor = HackingMonitor(config.monitor_window, config.monitor_min_rise, config.monitor_min_fall)
        self.step = 0
        self.output_dir = Path(config.output_dir)
        self.log_path = self.output_dir / LOG_FILE
        self.log = JsonlLog(self.log_path, self.accelerator).write

    # ------------------------------------------------------------------ the algorithm (subclasses)
    def iteration(self, step: int) -> dict[str, float]:
        """One rollout + update; returns the metrics logged for this step."""
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """Algorithm state to checkpoint besides LoRA/optimizer/EMA/monitor (e.g. DPO's reference)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ shared pieces
    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes

    def step_rng(self, step: int, stream: str) -> np.random.Generator:
        """The random stream ``stream`` of a step: the same on every process and again after a resume.

        Each use (prompt choice, SDE window, trained steps, DPO/NFT timesteps) has its own stream, so
        one draw never correlates with another (one shared seed made them correlate up to 0.87).
        """
        return np.random.default_rng([self.config.seed, step, RANDOM_STREAMS.index(stream)])

    def global_count(self, n: int) -> int:
        """``n`` summed over processes (the number of kept samples or pairs a loss is normalised by)."""
        if self.world_size == 1:
            return int(n)
        return int(self.accelerator.reduce(torch.tensor([float(n)], device=self.accelerator.device), "sum").item())

    def loss_weight(self, n_here: int, n_all: int) -> float:
        return equal_sample_weight(n_here, n_all, self.world_size)

    def runs_forward(self, keep: torch.Tensor, rows: list[int]) -> bool:
        """Whether this process runs the training forwards and backwards of its rollouts ``rows``, given ``keep``, the
        kept rollouts of every process (gathered, process after process): when any of those rows is kept here; under
        FSDP when any is kept on any process, since each forward and backward gathers the sharded denoiser's weights
        with every other process (a process with none kept runs them at zero weight)."""
        kept = keep.view(self.world_size, -1)[:, rows]
        return bool(kept.any() if self.sharded else kept[self.rank].any())

    def forward_rounds(self, n: int) -> int:
        """How many of a loop's training forwards this process runs when ``n`` are its own: ``n``, or under FSDP the
        most of any process (those beyond its own run at zero weight, as in ``runs_forward``)."""
        return int(self.gather(torch.tensor([n])).max()) if self.sharded else n

    def check_eval_batches(self) -> None:
        """Under FSDP every process must sample as many evaluation batches as every other (``runs_forward``): one line
        if the evaluation prompts dealt over the processes do not give that."""
        bs, n = self.config.batch_size, len(self.eval_prompts)
        batches = [-(-len(range(rank, n, self.world_size)) // bs) for rank in (0, self.world_size - 1)]  # the most, the fewest
        if batches[0] != batches[1]:
            raise EditRLError(f"config key eval_prompts: under FSDP every process samples as many evaluation batches, but "
                              f"{n} prompts over {self.world_size} processes in batches of {bs} give "
                              f"{batches[0]} and {batches[1]}; use a multiple of {self.world_size} prompts")

    def step_prompts(self, step: int) -> list[tuple[Any, str]]:
        """This process's ``groups_per_step`` prompts of the step (distinct across processes when possible)."""
        g = self.config.groups_per_step
        total = g * self.world_size
        rng = self.step_rng(step, "prompts")
        replace = total > len(self.train_prompts)
        chosen = rng.choice(len(self.train_prompts), size=total, replace=replace)
        return [self.train_prompts[i] for i in chosen[self.rank * g : (self.rank + 1) * g]]

    def step_groups(self, step: int):
        """The step's condition, each (source, instruction) repeated ``group_size`` times in place."""
        return self.encode(self.step_prompts(step)).repeat_interleave(self.config.group_size)

    def sample_seeds(self, step: int, n: int) -> list[int]:
        """Distinct noise seeds per (seed, step, process, sample)."""
        return [((self.config.seed * 1_000_003 + step) * 64 + self.rank) * 100_000 + j for j in range(n)]

    @torch.no_grad()
    def sample(self, cond, seeds: list[int], sigmas: torch.Tensor, noise_level: float = 0.0,
               sde: SDESampler | None = None, on_batch: Callable[[list[int], list], None] | None = None,
               ) -> tuple[torch.Tensor, list]:
        """Clean latents and images of the current denoiser (the caller picks the policy), in batches of
        ``batch_size``: the editor's Euler ODE, with ``noise_level > 0`` flow_grpo's SDE on every step but
        the last, or the step ``sde`` (its transitions accumulate batch after batch). The SDE noise of a
        batch comes from a generator seeded by the batch's first seed. ``on_batch(rows, images)`` is called
        as each batch is decoded (``RolloutScoring.submit``: scoring it while the next batch is sampled)."""
        sde = SDESampler(noise_level, noisy=range(len(sigmas) - 2)) if sde is None and noise_level > 0 else sde
        latents, images = [], []
        for lo in range(0, len(seeds), self.config.batch_size):
            rows = list(range(lo, min(lo + self.config.batch_size, len(seeds))))
            if sde is not None:
                sde.generator = torch.Generator("cpu").manual_seed(seeds[lo] + 7919)
            x = denoise(self.editor.velocity, self.editor.initial_noise([seeds[r] for r in rows]), cond.select(rows),
                        sigmas, sde or euler_step)
            latents.append(x)
            decoded = self.editor.decode(x)
            images += decoded
            if on_batch is not None:
                on_batch(rows, decoded)
        return torch.cat(latents), images

    def conditional(self, cond):
        """``cond`` with guidance off where guidance mixes several denoiser branches (true CFG, the
        3-way InstructPix2Pix guidance), so ``velocity`` is the conditional prediction, as Diffusion-DPO
        and DiffusionNFT train; a guidance *embedding* (FLUX.1-Kontext, one forward) is kept."""
        if self.editor.step_nfe(cond) == 1:
            return cond
        shared = {**cond.shared, "guidance": 1.0}
        if "image_guidance" in shared:
            shared["image_guidance"] = 1.0
        out = dataclasses.replace(cond, shared=shared)
        if self.editor.step_nfe(out) != 1:
            raise EditRLError(f"{self.editor.name}: could not switch guidance off for the conditional prediction")
        return out

    def timestep_table(self) -> torch.Tensor:
        """The flow times training draws t from: the editor's (shifted) schedule at 1000 steps, so t is
        never noisier than the model's largest training sigma (InstructPix2Pix's is below 1)."""
        return self.editor.sigmas(TRAIN_TIMESTEPS)[:-1].float()

    def encode(self, prompts: list[tuple[Any, str]]):
        """Encode once; the tensors are cloned out of inference mode so autograd can use them. Training works
        on the editor's square (a step mixes sources of any aspect ratio; one batch shares one size)."""
        square = (self.editor.resolution, self.editor.resolution)
        cond = self.editor.encode([p[0] for p in prompts], [p[1] for p in prompts], self.config.guidance, size=square)
        cond.batched = {k: v.clone() for k, v in cond.batched.items()}
        cond.shared = {k: v.clone() if torch.is_tensor(v) else v for k, v in cond.shared.items()}
        return cond

    def scoring(self, cond) -> RolloutScoring:
        """The scores of the rollouts of ``cond``, fed batch by batch: pass its ``submit`` as ``sample``'s
        ``on_batch``, then ``score`` it (in the background while sampling goes on, with ``overlap_reward``)."""
        self.last_scoring = RolloutScoring(self.reward, cond, self.config.reward_batch_size, self.reward_executor)
        return self.last_scoring

    def score(self, scoring: RolloutScoring) -> tuple[torch.Tensor, dict[str, float]]:
        """(B,) training rewards of the edits (joining ``scoring``), and for a mix of several rewards each
        component's global mean."""
        out = scoring.result()
        if out.score.isnan().any():  # e.g. a generative judge with failures=count: advantages need every rollout scored
            raise EditRLError(f"the reward left {int(out.score.isnan().sum())} of {len(out)} rollouts unscored (NaN); "
                              "RL needs every rollout scored (a generative judge: failures=raise, the default)")
        components = {}
        if isinstance(self.reward, WeightedReward) and len(self.reward.rewards) > 1:
            means = self.gather(out.mu.float()).mean(0)
            components = {f"reward_{name}": float(m) for name, m in zip(out.dimensions, means)}
        return out.score.float(), components

    def group_advantages(self, rewards: torch.Tensor) -> tuple[torch.Tensor, Advantages, slice]:
        """The gathered rewards of every process, their advantages (``GroupConfig`` keys) and this
        process's slice of them; group ids are global (``groups_per_step`` groups per process)."""
        cfg, n = self.config, len(rewards)
        group_ids = torch.arange(n) // cfg.group_size + self.rank * cfg.groups_per_step
        all_rewards, all_groups = self.gather(rewards), self.gather(group_ids)
        adv = compute_advantages(all_rewards, all_groups, cfg.advantage_mode, cfg.advantage_clip,
                                 min_group_std=cfg.min_group_std, max_group_mean=cfg.max_group_mean)
        return all_rewards, adv, slice(self.rank * n, (self.rank + 1) * n)

    def minibatches(self, n: int) -> list[list[list[int]]]:
        """The rollout's forward batches of ``batch_size`` rows, dealt into ``num_minibatches`` optimizer steps."""
        batches = [list(range(lo, min(lo + self.config.batch_size, n))) for lo in range(0, n, self.config.batch_size)]
        return [batches[m :: self.config.num_minibatches] for m in range(self.config.num_minibatches)]

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate a tensor from every process (identity in a single process)."""
        return self.accelerator.gather(t.to(self.accelerator.device)).cpu()

    def optimizer_step(self) -> float:
        """Average LoRA grads across processes, clip, step, update EMA; returns the grad norm."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.world_size > 1:
            flat = self.accelerator.reduce(torch.cat([g.flatten() for g in grads]).to(self.accelerator.device), "mean").cpu()
            offset = 0
            for p, g in zip(self.params, grads):
                p.grad = flat[offset : offset + g.numel()].view_as(g).to(p.device)
                offset += g.numel()
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
        if not math.isfinite(grad_norm):
            raise EditRLError(
                f"step {self.step}: gradient norm is {grad_norm} (NaN/inf loss); lower learning_rate or check the reward"
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.step(self.transformer)
        return grad_norm

    def eval_chunks(self, progress: bool = False) -> Iterator[tuple[list[int], list, list[str], list]]:
        """(prompt indices, sources, instructions, edits) of this process's share of the evaluation prompts, in
        chunks of ``batch_size``: one ODE sample each, seeded by the prompt's index (so every evaluation of a run,
        and every run, sees the same noise), with the EMA weights. ``progress`` counts the prompts on a bar as
        each chunk is done (sampled, then scored by the caller)."""
        mine = list(range(self.rank, len(self.eval_prompts), self.world_size))
        weights = self.ema.shadow if self.ema is not None else lora_state(self.transformer)
        bs = self.config.batch_size
        with tqdm(total=len(mine), desc=f"evaluation at step {self.step}", unit="prompt", leave=False,
                  disable=bar_disabled(self.accelerator.is_main_process and progress)) as bar:
            for lo in range(0, len(mine), bs):
                chunk = mine[lo : lo + bs]
                sources, instructions = [self.eval_prompts[i][0] for i in chunk], [self.eval_prompts[i][1] for i in chunk]
                bar.set_postfix_str("sampling")
                with swapped_lora(self.transformer, weights):
                    edits = self.editor.sample(sources, instructions, seeds=chunk, num_steps=self.config.eval_steps,
                                               guidance=self.config.guidance, batch_size=bs).images
                bar.set_postfix_str("scoring")
                yield chunk, sources, instructions, edits
                bar.update(len(chunk))

    @torch.no_grad()
    def eval_samples(self) -> tuple[list, list[str], list]:
        """(sources, instructions, edits) of this process's share of the evaluation prompts (``eval_chunks``)."""
        parts = list(self.eval_chunks())
        return tuple([x for part in parts for x in part[k]] for k in (1, 2, 3))

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """``eval_chunks`` scored: mean training reward and judge score (and in the world the exact-edit and
        lost-object shares), averaged over all processes' share of the prompts; the main process's first prompts
        are drawn as a grid (``samples/step-N.png``, ``plots.eval_grid``) and sent to the trackers."""
        names = self.measure_names
        logger.info("step %d: evaluating %d held-out prompts with the training reward (%s)%s", self.step,
                    len(self.eval_prompts), self.reward_name, f" and the judge {self.judge_name}" if self.judge is not None else "")
        bs = self.config.reward_batch_size
        shown: dict[str, list] = {key: [] for key in ("sources", "instructions", "edits", "reward", "judge", *names)}
        totals = torch.zeros(3 + len(names))
        for chunk, sources, instructions, edits in self.eval_chunks(progress=True):
            rewards = self.reward.score(sources_for(self.reward, sources), instructions, edits, batch_size=bs).score.float()
            judge_sources = sources_for(self.judge, sources) if self.judge is not None else None
            judged = self.judge.score(judge_sources, instructions, edits, batch_size=bs).score.float() if self.judge is not None else None
            measures = self.judge.measures(judge_sources, instructions, edits) if names else {}
            totals += torch.tensor([float(rewards.sum()), float(judged.sum()) if judged is not None else 0.0, len(chunk),
                                    *[float(measures[n].sum()) for n in names]])
            if len(shown["sources"]) < GRID_PROMPTS:  # what the grid shows: the first prompts
                for key, values in (("sources", split_sources(sources)[0]), ("instructions", instructions), ("edits", edits),
                                    ("reward", rewards.tolist()), ("judge", judged.tolist() if judged is not None else []),
                                    *((n, measures[n].tolist()) for n in names)):
                    shown[key] += values
        if self.accelerator.is_main_process and shown["sources"]:
            grid = eval_grid(shown["sources"], shown["instructions"], shown["edits"], shown["reward"],
                             shown["judge"] if self.judge is not None else None, {n: shown[n] for n in names})
            path = self.output_dir / "samples" / f"step-{self.step:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            grid.save(path)
            log_images(self.accelerator, "eval_samples", grid, self.step)
        totals = self.accelerator.reduce(totals.to(self.accelerator.device), "sum").cpu()
        out = {"eval_reward": float(totals[0] / totals[2])}
        if self.judge is not None:
            out["judge_score"] = float(totals[1] / totals[2])
            out.update({name: float(totals[3 + i] / totals[2]) for i, name in enumerate(names)})
        logger.info("step %d: %s", self.step, ", ".join(f"{k} {v:.4g}" for k, v in out.items()))
        return out

    # ------------------------------------------------------------------ loop, log, checkpoints
    def train(self, resume: bool | str = False) -> dict[str, Any]:
        """Run to ``num_iterations``; returns the last logged record. ``resume=True`` continues from the
        newest checkpoint in ``output_dir`` (and drops log lines written after it), ``resume=path`` from
        that checkpoint (a ``checkpoints/step-N`` folder or its trainer_state.pt)."""
        if resume:
            self.resume(None if resume is True else resume)
        elif self.accelerator.is_main_process:
            check_run_folder(self.output_dir, False, self.log_path.name)
        cfg = self.config
        if self.accelerator.is_main_process:
            write_config(cfg, self.output_dir)
        self.accelerator.init_trackers(type(self).__name__.removesuffix("Trainer").lower(), config=tracker_config(cfg))
        record: dict[str, Any] = {}
        if self.step == 0 and self.judge is not None and cfg.eval_every:
            self._evaluate_and_monitor(record := {"step": 0})
            self.log(record)
        bar = tqdm(range(self.step, cfg.num_iterations), initial=self.step, total=cfg.num_iterations,
                   desc=type(self).__name__, disable=bar_disabled(self.accelerator.is_main_process))
        for step in bar:
            record = {"step": step + 1, **self.iteration(step)}
            self.step = step + 1
            # every eval_every iterations, and once more after the last (the result of the run)
            if cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == cfg.num_iterations):
                self._evaluate_and_monitor(record)
            self.log(record)
            bar.set_postfix({k: f"{record[k]:.3g}" for k in ("reward_mean", "judge_score") if k in record})
            if self.step % cfg.save_every == 0 or self.step == cfg.num_iterations:
                self.save_checkpoint()
        if self.accelerator.is_main_process:
            self.save_lora(self.output_dir / "lora")
            self.save_curves()
        self.accelerator.wait_for_everyone()
        finish_trackers(self.accelerator)
        return record

    def save_curves(self) -> Path:
        """``curves.png`` (``plots.curves_figure``): the training reward, the held-out judge and (in the world) the
        shares of exact edits and lost objects against iterations and images sampled."""
        figure = curves_figure(JsonlLog(self.log_path).records(), f"{type(self).__name__} {self.output_dir.name}",
                               self.reward_name, self.judge_name)
        image = render(figure)
        image.save(self.output_dir / "curves.png")
        log_images(self.accelerator, "curves", image, self.step)
        return self.output_dir / "curves.png"

    def _evaluate_and_monitor(self, record: dict[str, Any]) -> None:
        metrics = self.evaluate()
        record.update(metrics)
        if "judge_score" in metrics:
            measures = {name: metrics[name] for name in self.measure_names}
            warning = self.monitor.update(self.step, metrics["eval_reward"], metrics["judge_score"], measures)
            if warning is not None:
                record["hacking_warning"] = warning

    def save_lora(self, directory: Path) -> Path:
        """The adapter users load (EMA weights when EMA is on), in diffusers format."""
        weights = self.ema.shadow if self.ema is not None else lora_state(self.transformer)
        with swapped_lora(self.transformer, weights):
            return save_lora(self.editor, directory)

    def save_checkpoint(self) -> None:
        """``checkpoints/step-N/``: the LoRA (diffusers format) and ``trainer_state.pt``, written atomically
        (``runs.save_checkpoint``); ``lora/`` follows it."""
        if self.accelerator.is_main_process:
            state = {
                "step": self.step,
                "lora": lora_state(self.transformer),
                "optimizer": self.optimizer.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "monitor": self.monitor.state_dict(),
                "extra": self.extra_state(),
            }
            final = save_checkpoint(self.output_dir, self.step, state, self.config, self.config.keep_checkpoints,
                                    write=self.save_lora)
            # lora/ (what users load) follows every checkpoint, not only the end of the run
            with atomic_folder(self.output_dir / "lora") as lora:
                shutil.copytree(final, lora, ignore=shutil.ignore_patterns(STATE_FILE), dirs_exist_ok=True)
            logger.info("saved checkpoint %s", final)
        self.accelerator.wait_for_everyone()

    def resume(self, checkpoint: str | Path | None = None) -> None:
        """Load the newest checkpoint of ``output_dir`` (or ``checkpoint``); its config must match the
        current one except for ``MAY_CHANGE_ON_RESUME`` keys."""
        found = load_checkpoint(self.output_dir, self.config, MAY_CHANGE_ON_RESUME, checkpoint)
        if found is None:
            logger.info("no checkpoint in %s: starting from scratch", self.output_dir)
            if self.accelerator.is_main_process and self.log_path.exists():
                self.log_path.unlink()
            return
        state, folder = found
        load_lora_state(self.transformer, state["lora"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.monitor.load_state_dict(state["monitor"])
        self.load_extra_state(state["extra"])
        self.step = int(state["step"])
        JsonlLog(self.log_path, self.accelerator).truncate(self.step)  # steps after the checkpoint are recomputed
        logger.info("resumed from %s at step %d", folder, self.step)
        self.accelerator.wait_for_everyone()
