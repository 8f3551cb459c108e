"""Training EditReward on preference pairs: one loop over accelerate for every scale.

The same loop runs as one process, under ``accelerate launch`` (DDP) and with DeepSpeed ZeRO-2/3 or
FSDP through the accelerate config files in ``configs/accelerate/``. The data order is a pure
function of (seed, epoch), and every process takes its contiguous slice of each global micro-batch,
so a run's samples depend only on the global batch size, and a resumed run continues exactly where
the checkpoint left off (the data position is the optimizer step; it is stored beside accelerate's
model/optimizer/scheduler/RNG state in ``data_state.json``).

Layout of ``output_dir``::

    config.yaml                the resolved config and editrl's version (written at the start)
    checkpoints/step-000050/   accelerate save_state + data_state.json (written last: marks it complete)
    metrics.jsonl              one JSON object per log/validation event (append-only)
    editrl-reward/             the tracker's files (report_to: tensorboard)
    final/                     EditReward.save_pretrained of the trained model (LoRA merged)
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

from .. import runs
from ..errors import EditRLError
from ..registry import TINY_BACKBONES, TOKENIZER_WORDS
from ..runs import (
    JsonlLog,
    check_resume_config,
    checkpoint_folder,
    finish_trackers,
    tracker_config,
    trackers,
    write_config,
)
from .data import PreferencePair, add_hard_negatives, load_pair_images, load_preference_pairs
from .losses import reward_loss
from .output import DIMENSIONS
from .train_config import ModelSection, RewardTrainingConfig

logger = logging.getLogger(__name__)

DATA_STATE = "data_state.json"
# keys a resumed run may change: how long to train, logging, where to write, and how the global batch is split
# over processes (the data plan, stored beside the config, checks the global batch itself)
MAY_CHANGE_ON_RESUME = ("max_steps", "num_epochs", "stop_after_steps", "save_every", "save_total_limit", "eval_every",
                        "eval_batch_size", "log_every", "report_to", "output_dir", "per_device_batch_size",
                        "data.num_workers")


# --------------------------------------------------------------------------- model


def build_reward_model(section: ModelSection):
    """An EditReward from a tiny in-code backbone or a pretrained Qwen2.5-VL-family or Qwen3-VL one."""
    from .checkpoint import backbone_classes, load_processor, resolve_folder
    from .model import EditReward

    reward_config = section.reward_config()
    if section.tiny is not None:  # built in code by editrl.tiny; a word-level tokenizer's words come from its owner
        vocabulary = TOKENIZER_WORDS[section.tokenizer]
        words = vocabulary(reward_config.templates) if vocabulary is not None else None
        try:
            backbone, processor = TINY_BACKBONES[section.tiny_backbone](section.seed, extra_special_tokens=[reward_config.reward_token],
                                                         words=words, **section.tiny)
        except TypeError as err:
            raise EditRLError(f"model.tiny: {err}") from None
    else:
        folder = resolve_folder(section.base_model, "base model")
        processor = load_processor(folder)
        dtype = section.dtype
        if dtype == "auto":
            dtype = "bfloat16" if section.lora is not None and torch.cuda.is_available() else "float32"
        dtype = getattr(torch, dtype)
        backbone = backbone_classes(folder)[1].from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    torch.manual_seed(section.seed)
    return EditReward.from_backbone(backbone, processor, reward_config)


def freeze_embeddings_except(embedding: nn.Embedding, token_id: int) -> torch.utils.hooks.RemovableHandle:
    """Let the input embeddings learn only the row of ``token_id`` (the reward token).

    The official recipe trains the new ``<|Reward|>`` embedding but no other row. A forward hook
    detaches the looked-up vectors of every other token, so the embedding matrix gets gradient in
    that one row only. Acting on the module's output (not on the parameter's gradient) keeps it
    correct when DeepSpeed ZeRO or FSDP shard or flatten the parameter; with no weight decay on this
    parameter AdamW leaves the other rows bit-identical.
    """

    def hook(module, args, output):
        keep = (args[0] == token_id).unsqueeze(-1)
        return torch.where(keep, output, output.detach())

    embedding.weight.requires_grad_(True)
    return embedding.register_forward_hook(hook)


def prepare_for_training(model, config: RewardTrainingConfig) -> None:
    """Choose what trains (full / LoRA, vision, embeddings row), dropout and gradient checkpointing."""
    section = config.model
    if section.lora is not None:
        from peft import LoraConfig
        from peft.tuners.lora import LoraModel

        for p in model.parameters():
            p.requires_grad_(False)
        lora = LoraConfig(r=section.lora.r, lora_alpha=section.lora.alpha, lora_dropout=section.lora.dropout,
                          target_modules=list(section.lora.target_modules))
        # adapters are injected in place into the language model's modules; the wrapper is kept to merge them
        model.__dict__["lora_model"] = LoraModel(model.model.language_model, lora, "default")
    else:
        for p in model.parameters():
            p.requires_grad_(section.train_backbone)
        if not section.train_vision:
            for p in model.model.visual.parameters():
                p.requires_grad_(False)
    for p in model.rm_heads.parameters():
        p.requires_grad_(True)
    embedding = model.model.get_input_embeddings()
    if model.lm_head.weight is not embedding.weight:
        model.lm_head.weight.requires_grad_(False)  # the reward forward never reads the LM head
    if section.train_backbone:
        model.__dict__["embedding_hook"] = freeze_embeddings_except(embedding, model.inputs.reward_token_id)
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()  # optimizer updates of 2e-6 vanish in bf16 weights: keep fp32 masters
    if config.disable_dropout:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
    if section.gradient_checkpointing:
        model.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()


def merge_lora(model) -> None:
    """Fold LoRA adapters into the base weights so the saved model is a plain EditReward."""
    lora_model = model.__dict__.pop("lora_model", None)
    if lora_model is not None:
        lora_model.merge_and_unload()


# --------------------------------------------------------------------------- data order


@dataclass
class DataPlan:
    """The data order: epoch ``e`` is a permutation seeded by ``seed + e``; micro-batch ``k`` of an
    epoch is its slice ``[k G, (k + 1) G)`` with G = per_device_batch_size * num_processes; process
    ``r`` takes the ``r``-th contiguous part of that slice. Trailing pairs that do not fill an
    optimizer step are skipped in that epoch (they come first in another epoch's order)."""

    num_pairs: int
    per_device_batch_size: int
    num_processes: int
    accumulation: int
    seed: int

    @property
    def global_batch(self) -> int:
        return self.per_device_batch_size * self.num_processes

    @property
    def steps_per_epoch(self) -> int:
        return self.num_pairs // (self.global_batch * self.accumulation)

    def order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.num_pairs, generator=generator).tolist()

    def micro_batches(self, start_step: int, rank: int) -> Iterator[tuple[int, list[int]]]:
        """(step, indices of this process) for every micro-batch from optimizer step ``start_step`` on."""
        step = start_step
        while True:
            epoch, in_epoch = divmod(step, self.steps_per_epoch)
            order = self.order(epoch)
            for s in range(in_epoch, self.steps_per_epoch):
                for m in range(self.accumulation):
                    begin = ((s * self.accumulation + m) * self.num_processes + rank) * self.per_device_batch_size
                    yield epoch * self.steps_per_epoch + s, order[begin: begin + self.per_device_batch_size]
            step = (epoch + 1) * self.steps_per_epoch


@dataclass
class PairBatch:
    """A collated micro-batch: images decoded, scores and labels as tensors."""

    pair_ids: list[str]
    sources: list
    instructions: list[str]
    rejected_instructions: list[str]
    """What each rejected edit is scored under: its pair's instruction, or another (a hard negative)."""
    chosen: list
    rejected: list
    labels: torch.Tensor
    strict: torch.Tensor
    """1.0 for pairs with a strict human preference (the ones pairwise accuracy counts)."""
    chosen_scores: torch.Tensor | None
    rejected_scores: torch.Tensor | None
    dimension_labels: torch.Tensor
    """(P, D): 1 / 0 where the chosen edit scored higher / lower on a dimension, NaN where tied or unknown; a hard
    negative is decided on instruction following (dimension 0) only."""
    mirrored: torch.Tensor
    """1.0 for the second pair of a disentangled tie (the first one mirrored): per-dimension accuracy skips it."""


def dimension_labels(pair: PreferencePair, num_dimensions: int) -> list[float]:
    if pair.kind == "negative":
        return [1.0] + [math.nan] * (num_dimensions - 1)
    if pair.chosen_scores is None:
        return [math.nan] * num_dimensions
    return [math.nan if c == r else float(c > r) for c, r in zip(pair.chosen_scores, pair.rejected_scores)]


class PairDataset(torch.utils.data.Dataset):
    def __init__(self, pairs: Sequence[PreferencePair]):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        pair = self.pairs[index]
        return pair, load_pair_images(pair)


def collate_pairs(items) -> PairBatch:
    pairs = [pair for pair, _ in items]
    has_scores = all(p.chosen_scores is not None for p in pairs)
    return PairBatch(
        pair_ids=[p.pair_id for p in pairs],
        sources=[images[0] for _, images in items],
        instructions=[p.instruction for p in pairs],
        rejected_instructions=[p.rejected_instruction or p.instruction for p in pairs],
        chosen=[images[1] for _, images in items],
        rejected=[images[2] for _, images in items],
        labels=torch.tensor([p.label for p in pairs], dtype=torch.float32),
        strict=torch.tensor([p.kind == "strict" for p in pairs], dtype=torch.float32),
        chosen_scores=torch.tensor([p.chosen_scores for p in pairs], dtype=torch.float32) if has_scores else None,
        rejected_scores=torch.tensor([p.rejected_scores for p in pairs], dtype=torch.float32) if has_scores else None,
        dimension_labels=torch.tensor([dimension_labels(p, len(DIMENSIONS)) for p in pairs], dtype=torch.float32),
        mirrored=torch.tensor([p.mirrored for p in pairs], dtype=torch.float32),
    )


def _loader(pairs, batches, num_workers: int):
    return torch.utils.data.DataLoader(PairDataset(pairs), batch_sampler=batches, collate_fn=collate_pairs,
                                       num_workers=num_workers)


# --------------------------------------------------------------------------- loss and metrics


def pair_outputs(model, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension outputs (P, D, 2) of the chosen and the rejected edits, in one forward."""
    n = len(batch.pair_ids)
    per_dim = model(batch.sources + batch.sources, batch.instructions + batch.rejected_instructions,
                    batch.chosen + batch.rejected)
    return per_dim[:n], per_dim[n:]


def batch_loss(model, fuse, batch: PairBatch, config: RewardTrainingConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-pair loss, chosen outputs, rejected outputs)."""
    chosen, rejected = pair_outputs(model, batch)
    device = chosen.device
    scores = [s.to(device) if s is not None else None for s in (batch.chosen_scores, batch.rejected_scores)]
    loss = reward_loss(chosen, rejected, batch.labels.to(device), *scores, fuse, config.loss,
                       dimension_labels=batch.dimension_labels.to(device))
    return loss, chosen, rejected


def pair_statistics(loss, chosen, rejected, batch: PairBatch, fuse, weight: torch.Tensor) -> torch.Tensor:
    """Sums for validation metrics, reduced across processes by summing:
    [loss, n, correct, n_strict, sigma, n_sigma, (correct_d, n_d) per dimension].

    Pairwise accuracy counts strict pairs (ties and disentangled ties have no single right answer);
    per-dimension accuracy counts pairs decided on that dimension (``dimension_labels``, as the per-dimension loss
    reads them: scores that differ; a row without scores is undecided, whatever the rest of its batch), a
    disentangled tie once (its mirrored pair would count the same comparison again)."""
    weight = weight.to(chosen.device)
    mu_c, mu_r = fuse(chosen)[:, 0], fuse(rejected)[:, 0]
    decided = batch.strict.to(chosen.device) * weight
    correct = (mu_c > mu_r).float() * decided
    sigma = torch.cat([chosen[..., 1], rejected[..., 1]]).exp()
    stats = [(loss * weight).sum(), weight.sum(), correct.sum(), decided.sum(),
             (sigma * torch.cat([weight, weight])[:, None]).sum(), weight.sum() * 2 * chosen.shape[1]]
    labels = batch.dimension_labels.to(chosen.device)
    once = (1 - batch.mirrored.to(chosen.device)) * weight
    for d in range(chosen.shape[1]):
        has = (~torch.isnan(labels[:, d])).float() * once
        right = torch.where(labels[:, d] > 0.5, chosen[:, d, 0] > rejected[:, d, 0], chosen[:, d, 0] < rejected[:, d, 0])
        stats += [(right.float() * has).sum(), has.sum()]
    return torch.stack([s.float() for s in stats])


def metrics_from_statistics(stats: torch.Tensor, dimensions: Sequence[str]) -> dict:
    s = stats.tolist()
    out = {"loss": s[0] / max(s[1], 1), "pairs": int(s[1]), "accuracy": s[2] / s[3] if s[3] else None,
           "mean_sigma": s[4] / max(s[5], 1)}
    for d, name in enumerate(dimensions):
        correct, count = s[6 + 2 * d], s[7 + 2 * d]
        out[f"accuracy_{name}"] = correct / count if count else None
    return out


# --------------------------------------------------------------------------- checkpoints


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints (their data_state.json exists), oldest first."""
    return runs.list_checkpoints(output_dir, DATA_STATE)


# --------------------------------------------------------------------------- the trainer


class RewardTrainer:
    """Trains an EditReward model as configured; ``train()`` returns a summary dict."""

    def __init__(self, config: RewardTrainingConfig, model=None):
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, set_seed

        self.config = config
        mixed = config.mixed_precision
        if mixed == "auto":
            mixed = "bf16" if torch.cuda.is_available() else "no"
        self.accelerator = Accelerator(gradient_accumulation_steps=config.gradient_accumulation_steps,
                                       mixed_precision=mixed, log_with=trackers(config.report_to) or None,
                                       project_dir=config.output_dir)
        if self.accelerator.gradient_accumulation_steps != config.gradient_accumulation_steps:
            # accelerate launch with a DeepSpeed config sets it from the accelerate config file
            raise EditRLError(
                f"the accelerate config sets gradient_accumulation_steps={self.accelerator.gradient_accumulation_steps} "
                f"but the training config has {config.gradient_accumulation_steps}; make them equal")
        set_seed(config.seed)
        self.output_dir = Path(config.output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        main = self.accelerator.is_main_process

        self.train_pairs, self.train_summary = load_preference_pairs(
            config.data.train, config.data.ties, config.data.score_range, config.data.strict, config.data.verify_images)
        if config.data.hard_negatives:
            self.train_pairs, added = add_hard_negatives(self.train_pairs, config.data.hard_negatives,
                                                         config.data.hard_negatives_min_score, config.seed,
                                                         config.data.swap_words)
            self.train_summary = {**self.train_summary, "hard_negatives": added, "pairs": len(self.train_pairs)}
        self.val_pairs, self.val_summary = ([], None)
        if config.data.validation is not None:
            self.val_pairs, self.val_summary = load_preference_pairs(
                config.data.validation, config.data.ties, config.data.score_range, config.data.strict,
                config.data.verify_images)
        if main:
            logger.info("training pairs: %s", self.train_summary)
        self.plan = DataPlan(len(self.train_pairs), config.per_device_batch_size, self.accelerator.num_processes,
                             config.gradient_accumulation_steps, config.seed)
        if self.plan.steps_per_epoch == 0:
            raise EditRLError(
                f"{len(self.train_pairs)} training pairs do not fill one optimizer step of "
                f"{self.plan.global_batch * self.plan.accumulation} pairs (per_device_batch_size x processes x "
                "gradient_accumulation_steps); add data or lower the batch size")
        self.max_steps = config.max_steps or max(1, math.ceil(config.num_epochs * self.plan.steps_per_epoch))

        self.model = model if model is not None else build_reward_model(config.model)
        prepare_for_training(self.model, config)
        self.fuse = self.model.fuse
        self.dimensions = tuple(self.model.dimensions)
        self.optimizer = self._optimizer()
        from transformers import get_scheduler

        self.scheduler = get_scheduler(config.lr_scheduler, self.optimizer,
                                       num_warmup_steps=int(config.warmup_ratio * self.max_steps),
                                       num_training_steps=self.max_steps)
        if self.accelerator.distributed_type == DistributedType.DEEPSPEED:
            # no prepared DataLoader tells DeepSpeed the micro-batch size: set it before prepare()
            ds_config = self.accelerator.state.deepspeed_plugin.deepspeed_config
            ds_config["train_micro_batch_size_per_gpu"] = config.per_device_batch_size
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        # stepped once per optimizer step by us; registered so save_state/load_state include it
        self.accelerator.register_for_checkpointing(self.scheduler)
        self.log = JsonlLog(self.output_dir / "metrics.jsonl", self.accelerator, tag="split")

    def _optimizer(self) -> torch.optim.Optimizer:
        embedding = self.model.model.get_input_embeddings().weight
        params = [p for p in self.model.parameters() if p.requires_grad and p is not embedding]
        groups = [{"params": params, "weight_decay": self.config.weight_decay}]
        if embedding.requires_grad:  # its reward-token row trains (not with train_backbone: false)
            groups.append({"params": [embedding], "weight_decay": 0.0})  # decay would move the frozen rows
        return torch.optim.AdamW(groups, lr=self.config.learning_rate,
                                 betas=(self.config.adam_beta1, self.config.adam_beta2))

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, step: int, samples_seen: int) -> Path:
        acc = self.accelerator
        acc.wait_for_everyone()
        with checkpoint_folder(self.output_dir, step, DATA_STATE, self.config.save_total_limit or 0,
                               main=acc.is_main_process, barrier=acc.wait_for_everyone) as folder:
            acc.save_state(str(folder))
            if acc.is_main_process:
                state = {"step": step, "samples_seen": samples_seen, "epoch": step // self.plan.steps_per_epoch,
                         "global_batch": self.plan.global_batch, "accumulation": self.plan.accumulation,
                         "num_pairs": self.plan.num_pairs, "seed": self.plan.seed, "max_steps": self.max_steps,
                         "config": asdict(self.config)}
                (folder / DATA_STATE).write_text(json.dumps(state, indent=2))
        return runs.checkpoint_dir(self.output_dir, step)

    def _resume(self) -> tuple[int, int, Path | None]:
        checkpoints = list_checkpoints(self.output_dir)
        if not checkpoints:
            logger.warning("--resume: no checkpoint in %s; starting from step 0", self.output_dir / "checkpoints")
            return 0, 0, None
        latest = checkpoints[-1]
        state = json.loads((latest / DATA_STATE).read_text())
        expected = {"global_batch": self.plan.global_batch, "accumulation": self.plan.accumulation,
                    "num_pairs": self.plan.num_pairs, "seed": self.plan.seed}
        changed = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
        if changed:
            raise EditRLError(f"--resume from {latest}: the data order changed since the checkpoint "
                              f"({', '.join(f'{k}: {a} -> {b}' for k, (a, b) in changed.items())}); resume with the same "
                              "data, seed and global batch, or start a new output_dir")
        if "config" in state:  # checkpoints written before the shared trainer shell hold the data order only
            check_resume_config(state["config"], self.config, MAY_CHANGE_ON_RESUME, where=f"--resume from {latest}")
        self.accelerator.load_state(str(latest))
        logger.info("resumed from %s (step %d, %d samples seen)", latest, state["step"], state["samples_seen"])
        return state["step"], state["samples_seen"], latest

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def evaluate(self) -> dict:
        """Validation metrics over all processes: loss, accuracy, per-dimension accuracy, mean sigma."""
        acc = self.accelerator
        n, world = len(self.val_pairs), acc.num_processes
        per_rank = math.ceil(n / world)
        mine = list(range(acc.process_index, n, world))
        weights = [1.0] * len(mine) + [0.0] * (per_rank - len(mine))
        mine += [0] * (per_rank - len(mine))  # equal batch counts on every rank (ZeRO-3/FSDP need it)
        bs = self.config.eval_batch_size
        batches = [mine[i: i + bs] for i in range(0, per_rank, bs)]
        self.model.eval()
        total = None
        loader = _loader(self.val_pairs, batches, self.config.data.num_workers)
        for b, batch in enumerate(loader):
            with acc.autocast():
                loss, chosen, rejected = batch_loss(self.model, self.fuse, batch, self.config)
            w = torch.tensor(weights[b * bs: b * bs + len(batch.pair_ids)])
            stats = pair_statistics(loss.float(), chosen.float(), rejected.float(), batch, self.fuse, w)
            total = stats if total is None else total + stats
        self.model.train()
        return metrics_from_statistics(acc.reduce(total, reduction="sum").cpu(), self.dimensions)

    # ------------------------------------------------------------------ training
    def micro_batches(self, start_step: int) -> Iterator[PairBatch]:
        """This process's collated micro-batches from optimizer step ``start_step`` on, in the plan's order."""
        batches = (idx for _, idx in self.plan.micro_batches(start_step, self.accelerator.process_index))
        return iter(_loader(self.train_pairs, batches, self.config.data.num_workers))

    def optimizer_step(self, loader: Iterator[PairBatch], step: int, last_checkpoint: Path | None = None) -> float:
        """Optimizer step ``step + 1``: ``gradient_accumulation_steps`` micro-batches from ``loader``,
        clipped, stepped, the scheduler advanced; returns the loss averaged over micro-batches and processes."""
        acc, config = self.accelerator, self.config
        step_loss = torch.zeros((), device=acc.device)
        for micro in range(self.plan.accumulation):
            batch = next(loader)
            with acc.accumulate(self.model), acc.autocast():
                loss, _, _ = batch_loss(self.model, self.fuse, batch, config)
                loss = loss.mean()
                bad = acc.reduce((~torch.isfinite(loss.detach())).float().reshape(1), reduction="sum")
                if bad.item() > 0:
                    raise EditRLError(
                        f"non-finite loss ({loss.item()}) at step {step + 1}, micro-batch {micro}, pairs "
                        f"{batch.pair_ids} on process {acc.process_index}; last good checkpoint: "
                        f"{last_checkpoint or 'none (lower learning_rate or check the data, then start again)'}")
                acc.backward(loss)
                if acc.sync_gradients and config.max_grad_norm is not None:
                    acc.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
            step_loss += loss.detach() / self.plan.accumulation
        self.scheduler.step()
        return acc.reduce(step_loss, reduction="mean").item()

    def train(self, resume: bool = False) -> dict:
        from tqdm.auto import tqdm

        acc, config = self.accelerator, self.config
        if not resume:
            runs.check_run_folder(self.output_dir, False, self.log.path.name)
        start_step, samples_seen, last_checkpoint = self._resume() if resume else (0, 0, None)
        if acc.is_main_process:
            write_config(config, self.output_dir)
        acc.init_trackers("editrl-reward", config=tracker_config(config))
        stop_at = min(self.max_steps, config.stop_after_steps or self.max_steps)
        loader = self.micro_batches(start_step)
        progress = tqdm(total=self.max_steps, initial=start_step, desc="reward train", disable=not acc.is_main_process)
        step, running, started = start_step, None, time.time()
        last_eval = None
        while step < stop_at:
            step_loss = self.optimizer_step(loader, step, last_checkpoint)
            step += 1
            samples_seen += self.plan.global_batch * self.plan.accumulation
            running = step_loss if running is None else 0.9 * running + 0.1 * step_loss
            progress.update(1)
            progress.set_postfix(loss=f"{running:.4f}")
            if step % config.log_every == 0 or step == stop_at:
                self.log.write({"split": "train", "step": step, "loss": step_loss, "running_loss": running,
                                "lr": self.scheduler.get_last_lr()[0], "samples_seen": samples_seen,
                                "elapsed_s": round(time.time() - started, 3)})
            if self.val_pairs and (step % config.eval_every == 0 or step == self.max_steps):
                last_eval = {"split": "validation", "step": step, **self.evaluate()}
                self.log.write(last_eval)
            if step % config.save_every == 0 or step == stop_at:
                last_checkpoint = self._save_checkpoint(step, samples_seen)
        progress.close()
        finish_trackers(acc)
        summary = {"step": step, "max_steps": self.max_steps, "samples_seen": samples_seen,
                   "train_pairs": self.train_summary, "validation": last_eval,
                   "checkpoint": str(last_checkpoint) if last_checkpoint else None, "final_model": None}
        if step >= self.max_steps:
            summary["final_model"] = str(self.save_final())
        return summary

    def _sharded(self) -> bool:
        from accelerate.utils import DistributedType

        acc = self.accelerator
        if acc.distributed_type == DistributedType.FSDP:
            return True
        plugin = acc.state.deepspeed_plugin
        return acc.distributed_type == DistributedType.DEEPSPEED and plugin is not None and plugin.zero_stage == 3

    def save_final(self) -> Path:
        """Write the trained model with EditReward.save_pretrained (LoRA merged) to output_dir/final.

        Under FSDP / ZeRO-3 no process holds the whole model: the full state dict is gathered and
        loaded into a fresh CPU copy built from the same config, which is then saved."""
        acc = self.accelerator
        acc.wait_for_everyone()
        target = self.output_dir / "final"
        if self._sharded():
            state = acc.get_state_dict(self.model)  # collective: every process takes part
            model = None
            if acc.is_main_process:
                model = build_reward_model(self.config.model)
                if self.config.model.lora is not None:
                    prepare_for_training(model, self.config)
                model.load_state_dict(state)
        else:
            model = acc.unwrap_model(self.model)
        if acc.is_main_process:
            hook = model.__dict__.pop("embedding_hook", None)
            if hook is not None:
                hook.remove()
            merge_lora(model)
            model.eval()
            model.save_pretrained(str(target))
            (target / "training_config.json").write_text(json.dumps(asdict(self.config), indent=2))
        acc.wait_for_everyone()
        return target


def train(config: RewardTrainingConfig, resume: bool = False, model=None) -> dict:
    """Train as configured (``model``: an already built EditReward, e.g. in tests); returns a summary."""
    return RewardTrainer(config, model=model).train(resume=resume)
