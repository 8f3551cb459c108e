"""Spending less than best-of-N: successive halving over x0 previews.

All N candidates start denoising together. At a few pruning steps each live candidate's x0 preview
(``x - sigma v``, with the velocity that step computes anyway) is decoded and scored by the reward;
the best ``keep`` fraction goes on, the rest stop (the ``on_step`` of ``editrl.sampler.editors.base.denoise``).
Plain best-of-N is the same loop with no pruning step, so a surviving candidate's trajectory is
exactly the one it has in the full run: pruning only decides who continues, never how.

Costs are counted, not estimated: ``nfe`` is every denoiser evaluation (per candidate and step,
each guidance branch counted, see ``Editor.step_nfe``), ``reward_calls`` every edit or preview
scored. VAE decodes of previews are not counted in NFE (they cost a small fraction of a step).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..config import Config, config_field
from ..errors import EditRLError
from ..reward.output import RewardFunction, RewardOutput, sources_for
from .editors.base import EditCondition, Editor, denoise
from .selection import selection_values

logger = logging.getLogger(__name__)

SEARCHES = ("full", "halving")


@dataclass
class HalvingConfig(Config):
    """How the pruned search spends its budget."""

    keep: float = config_field(0.5, "Fraction of the live candidates kept at each pruning step (1/2: successive halving).")
    horizon: float = config_field(0.5, "The pruning steps are spread evenly over the first horizon fraction of the denoising "
                                  "steps (earlier is cheaper; later previews are sharper and rank better).")
    min_survivors: int = config_field(1, "Stop pruning once this many candidates are left; they all finish and the best of "
                                      "them by final score wins.")
    prune_steps: Sequence[int] | None = config_field(None, "Explicit step indices to prune at (overrides horizon); step i means "
                                                     "after computing the velocity at sigmas[i] (0: on the very first prediction).")
    survivors: Sequence[int] | None = config_field(None, "With prune_steps, how many candidates each pruning step keeps "
                                                   "(default: successive keep fractions).")

    def validate(self) -> None:
        super().validate()
        if not 0 < self.keep < 1:
            raise EditRLError(f"keep: expected a fraction in (0, 1), got {self.keep}")
        if not 0 < self.horizon <= 1:
            raise EditRLError(f"horizon: expected a fraction in (0, 1], got {self.horizon}")
        if self.min_survivors < 1:
            raise EditRLError(f"min_survivors: expected a count >= 1, got {self.min_survivors}")

    def schedule(self, n: int, num_steps: int) -> list[tuple[int, int]]:
        """[(step, candidates left after pruning at that step)] for ``n`` candidates."""
        sizes, live = [], n
        while live > self.min_survivors:
            live = max(self.min_survivors, math.ceil(live * self.keep))
            sizes.append(live)
        if self.prune_steps is not None:
            steps = [int(s) for s in self.prune_steps]
            if any(not 0 <= s < num_steps for s in steps) or steps != sorted(set(steps)):
                raise EditRLError(f"prune_steps: expected increasing steps in [0, {num_steps}), got {list(self.prune_steps)}")
            if self.survivors is not None:
                sizes = [int(k) for k in self.survivors]
                if len(sizes) != len(steps) or any(k < 1 for k in sizes) or sizes != sorted(sizes, reverse=True) or sizes[0] > n:
                    raise EditRLError(f"survivors: expected one non-increasing count in [1, {n}] per prune step, got {list(self.survivors)}")
            return list(zip(steps, sizes))
        if not sizes:
            return []
        last = max(1, round(self.horizon * num_steps))
        schedule: dict[int, int] = {}
        for r, size in enumerate(sizes):  # rounds that land on the same step prune there at once
            step = min(num_steps - 1, max(1, round(last * (r + 1) / len(sizes))))
            schedule[step] = min(size, schedule.get(step, size))
        return sorted(schedule.items())


@dataclass
class Candidate:
    """One candidate's run: where it stopped, what it cost, its last score and (once ranked) its rank.

    ``latents``/``image`` are the final sample for a survivor, or the x0 preview that was scored
    when it was pruned (``pruned_at``: that step; None if it ran to the end); ``reward`` is a one-row
    ``RewardOutput`` of that image and ``value`` what the selection rule ranked by.
    """

    index: int
    seed: int
    latents: torch.Tensor
    image: Image.Image
    reward: RewardOutput
    value: float
    steps: int
    nfe: int
    pruned_at: int | None = None
    preview_values: list[float] = field(default_factory=list)
    rank: int | None = None
    round: int | None = None  # the adaptive search's round that drew it (None for full and halving)

    @property
    def record(self) -> dict:
        """The reward as one row: score, score_sigma, mu_<dim>, sigma_<dim>."""
        return self.reward.to_records()[0]

    def to_json(self) -> dict:
        return {"index": self.index, "seed": self.seed, "rank": self.rank, "value": self.value, **self.record,
                "nfe": self.nfe, "pruned_at_step": self.pruned_at, "round": self.round}


@dataclass
class SearchResult:
    candidates: list[Candidate]  # in seed order
    nfe: int
    reward_calls: int


def run_search(
    editor: Editor,
    reward: RewardFunction,
    cond: EditCondition,
    seeds: Sequence[int],
    num_steps: int | None = None,
    search: str = "full",
    select: str = "fused",
    k: float = 1.0,
    halving: HalvingConfig | None = None,
    batch_size: int | None = None,
    reward_batch_size: int | None = None,
    progress: bool = True,
) -> SearchResult:
    """Denoise one candidate per seed under ``cond`` (one row per seed) and score them.

    ``search="full"`` runs every candidate to the end (plain best-of-N); ``"halving"`` prunes on
    x0 previews as configured by ``halving``. ``progress`` shows a step progress bar on long runs.
    """
    if search not in SEARCHES:
        raise EditRLError(f"search: expected one of {', '.join(SEARCHES)}, got {search!r}")
    seeds = [int(s) for s in seeds]
    if len(cond) != len(seeds):
        raise EditRLError(f"seeds: got {len(seeds)} seeds for {len(cond)} conditions")
    sigmas = editor.sigmas(num_steps, cond.size)
    total_steps = len(sigmas) - 1
    schedule = dict((halving or HalvingConfig()).schedule(len(seeds), total_steps)) if search == "halving" else {}
    step_nfe = editor.step_nfe(cond)
    batch_size = batch_size or len(seeds)

    live = torch.arange(len(seeds))  # indices (into seeds) of the candidates still running
    done: dict[int, Candidate] = {}
    preview_values: dict[int, list[float]] = {i: [] for i in range(len(seeds))}
    nfe = reward_calls = 0

    def velocity(x: torch.Tensor, sigma: torch.Tensor, cond: EditCondition) -> torch.Tensor:  # batch_size rows a call
        chunks = [(lo, min(lo + batch_size, len(x))) for lo in range(0, len(x), batch_size)]
        return torch.cat([editor.velocity(x[lo:hi], sigma[lo:hi], cond.select(range(lo, hi))) for lo, hi in chunks])

    def score(images: list[Image.Image]) -> tuple[RewardOutput, torch.Tensor]:  # the live candidates' images
        nonlocal reward_calls
        reward_calls += len(live)
        sources = cond.prompt_sources()
        out = reward.score(sources_for(reward, [sources[i] for i in live]), [cond.instructions[i] for i in live], images,
                           batch_size=reward_batch_size)
        return out, selection_values(out, select, k)

    def stop(rows, latents, images, out, values, pruned_at: int | None = None) -> None:  # live rows that end here
        steps, evaluated = (total_steps, total_steps) if pruned_at is None else (pruned_at, pruned_at + 1)
        for j in rows:
            index = int(live[j])
            done[index] = Candidate(index, seeds[index], latents[j].cpu(), images[j], out.select(j), float(values[j]),
                                    steps=steps, nfe=evaluated * step_nfe, pruned_at=pruned_at,
                                    preview_values=preview_values[index])

    def prune(step: int, sigma: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor | None:
        nonlocal live, nfe
        bar.update()
        nfe += len(live) * step_nfe
        if step not in schedule:
            return None
        previews = editor.x0(x, sigma, v)
        images = editor.decode(previews, cond.size)
        out, values = score(images)
        for j, value in enumerate(values.tolist()):
            preview_values[int(live[j])].append(value)
        order = torch.argsort(values, descending=True, stable=True)
        stop(order[schedule[step] :].tolist(), previews, images, out, values, pruned_at=step)
        kept = order[: schedule[step]].sort().values  # keep seed order among survivors
        logger.debug("step %d: kept %d of %d candidates", step, len(kept), len(live))
        live = live[kept]
        return kept

    with torch.no_grad(), tqdm(total=total_steps, desc=f"{search} search", leave=False,
                               disable=not progress or len(seeds) * total_steps < 64) as bar:
        x = denoise(velocity, editor.initial_noise(seeds, cond.size), cond, sigmas, on_step=prune)
        images = editor.decode(x, cond.size)
        stop(range(len(live)), x, images, *score(images))
    return SearchResult([done[i] for i in range(len(seeds))], nfe=nfe, reward_calls=reward_calls)
