"""Adaptive search: a budget in NFE instead of a fixed N, spent in rounds, stopping once an edit is good.

Plain best-of-N spends the same compute on every edit. Here the search draws ``round_size`` fresh seeds
per round and runs them as one pruned search (``run_search`` with a ``HalvingConfig``: x0 previews scored
at ``prune_steps``, the best ``survivors`` go on), so each round finishes a few candidates for the price
of many previews. After each round the stop rule looks at the finished candidates: once one is
confidently good the search stops (easy edits cost one round); otherwise the next round draws new
seeds, until the next round would not fit in the budget (hard edits get all of it). The last round is
shrunk to what the budget still pays for, so the budget is never exceeded.

Every round is an ordinary pruned search over consecutive seeds, so every candidate is reproducible
from its seed alone (the sampling loop's rows never interact) and the costs are counted exactly as
there (each guidance branch counted, see ``Editor.step_nfe``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Sequence

from ..config import Config, config_field
from ..errors import EditRLError
from ..reward.output import RewardFunction
from .editors.base import EditCondition, Editor
from .search import Candidate, HalvingConfig, run_search

logger = logging.getLogger(__name__)

STOP_RULES = ("lcb", "budget")


@dataclass
class AdaptiveConfig(Config):
    """How the adaptive search spends its budget and when it stops."""

    budget: int | None = config_field(None, "NFE the search may spend on one edit (denoiser evaluations, guidance "
                                      "branches counted); never exceeded. Default: best-of-8's cost.")
    round_size: int = config_field(8, "Fresh seeds drawn per round (the last round may draw fewer to fit the budget).")
    prune_fraction: float = config_field(0.25, "Previews are scored on the first prediction (step 0) and again at this "
                                         "fraction of the steps; a preview at step 0 costs one step per candidate.")
    survivors: Sequence[int] = config_field((2, 1), "Candidates of a round kept at each of the two preview steps; the "
                                            "last count finishes.")
    stop: str = config_field("budget", "The stop rule. lcb: stop after a round once a finished candidate's fused score "
                             "minus z times its sigma is at least `good` (confidently good: an uncertain high score does "
                             "not stop it; for a reward with sigma 0 this is a plain score threshold); budget: spend the "
                             "whole budget (no threshold is known for the reward).")
    good: float | None = config_field(None, "Stop rule lcb: the score a candidate must reach with confidence (on the "
                                      "reward's scale, e.g. a log-likelihood near 0 for world-describe).")
    z: float = config_field(1.0, "Stop rule lcb: how many of the reward's sigmas below its score the bound sits.")

    def validate(self) -> None:
        super().validate()
        if self.budget is not None and self.budget < 1:
            raise EditRLError(f"budget: expected NFE >= 1, got {self.budget}")
        if self.round_size < 1:
            raise EditRLError(f"round_size: expected >= 1 seeds a round, got {self.round_size}")
        if not 0 < self.prune_fraction < 1:
            raise EditRLError(f"prune_fraction: expected a fraction in (0, 1), got {self.prune_fraction}")
        sizes = [int(k) for k in self.survivors]
        if len(sizes) != 2 or sizes[1] < 1 or sizes[0] < sizes[1]:
            raise EditRLError(f"survivors: expected two counts, non-increasing, >= 1, got {list(self.survivors)}")
        if self.stop not in STOP_RULES:
            raise EditRLError(f"stop: expected one of {', '.join(STOP_RULES)}, got {self.stop!r}")
        if self.stop == "lcb" and self.good is None:
            raise EditRLError("good: stop rule lcb needs the score a confidently good edit reaches")
        if self.z < 0:
            raise EditRLError(f"z: expected >= 0, got {self.z}")

    @classmethod
    def until(cls, budget: int | None, good: float | None, **settings) -> "AdaptiveConfig":
        """Spend ``budget``, stopping once an edit is confidently ``good`` (rule lcb), or spend it all when no ``good``
        is given: the stop rule follows from whether a threshold is known."""
        return cls(budget=budget, stop="budget" if good is None else "lcb", good=good, **settings)

    def plan(self, n: int, num_steps: int) -> list[tuple[int, int]]:
        """[(step, candidates kept)] of a round of ``n`` seeds: the preview steps where pruning removes someone."""
        steps = sorted({0, round(self.prune_fraction * num_steps)} - {num_steps - 1, num_steps})
        plan, live = [], n
        for step, keep in zip(steps, self.survivors):
            if keep < live:
                plan.append((step, int(keep)))
                live = keep
        return plan

    def resolved_budget(self, num_steps: int, step_nfe: int) -> int:
        """The budget in NFE (default: best-of-8's, ``8 * num_steps * step_nfe``); one error line if it cannot pay
        for one candidate run to the end."""
        full = num_steps * step_nfe
        budget = 8 * full if self.budget is None else int(self.budget)
        if budget < full:
            raise EditRLError(f"budget: {budget} NFE is less than one candidate's full cost ({num_steps} steps x "
                              f"{step_nfe} guidance branches = {full} NFE)")
        return budget


def round_cost(plan: list[tuple[int, int]], n: int, num_steps: int, step_nfe: int) -> int:
    """NFE of one round of ``n`` seeds pruned by ``plan``: every live candidate pays ``step_nfe`` per step,
    pruning at step s takes effect from step s + 1 (as ``run_search`` counts)."""
    total, live, prunes = 0, n, dict(plan)
    for step in range(num_steps):
        total += live * step_nfe
        live = prunes.get(step, live)
    return total


@dataclass
class AdaptiveResult:
    """The candidates of all rounds (``index``: in draw order, ``round`` set), the total cost, and the log:
    one entry per round (seeds, plan, NFE, best value so far) and why the search stopped."""

    candidates: list[Candidate]
    nfe: int
    reward_calls: int
    budget: int
    rounds: list[dict]
    stopped_because: str

    def to_json(self) -> dict:
        return {"budget": self.budget, "nfe": self.nfe, "rounds": self.rounds, "stopped_because": self.stopped_because}


def confident(candidate: Candidate, config: AdaptiveConfig) -> bool:
    """The stop rule lcb on one finished candidate: fused score - z * fused sigma >= good."""
    record = candidate.record
    return config.stop == "lcb" and record["score"] - config.z * record["score_sigma"] >= config.good


def run_adaptive(
    editor: Editor,
    reward: RewardFunction,
    cond: EditCondition,
    first_seed: int = 0,
    num_steps: int | None = None,
    select: str = "fused",
    k: float = 1.0,
    config: AdaptiveConfig | None = None,
    batch_size: int | None = None,
    reward_batch_size: int | None = None,
    progress: bool = True,
    rounds_run: dict | None = None,
) -> AdaptiveResult:
    """Search seeds ``first_seed, first_seed + 1, ...`` for the one-row condition ``cond`` within ``config.budget``.

    ``rounds_run``: a dict kept by the caller across searches of this same ``cond`` (editor, reward, steps and
    selection unchanged), where each round's result is stored under its seeds and plan; a round already there is
    reused, not rerun — the same seeds and plan give the same candidates, so a benchmark comparing budgets or stop
    rules on one edit pays once for the rounds they share.
    """
    config = config or AdaptiveConfig()
    config.validate()
    if len(cond) != 1:
        raise EditRLError(f"cond: the adaptive search edits one (source, instruction), got {len(cond)}")
    total_steps = len(editor.sigmas(num_steps, cond.size)) - 1
    step_nfe = editor.step_nfe(cond)
    budget = config.resolved_budget(total_steps, step_nfe)
    candidates: list[Candidate] = []
    rounds: list[dict] = []
    nfe = reward_calls = 0
    while True:
        n = next((m for m in range(config.round_size, 0, -1)
                  if round_cost(config.plan(m, total_steps), m, total_steps, step_nfe) <= budget - nfe), 0)
        if n == 0:
            stopped = "budget"
            break
        plan = config.plan(n, total_steps)
        seeds = list(range(first_seed + len(candidates), first_seed + len(candidates) + n))
        steps, kept = zip(*plan) if plan else ((), ())
        key = (tuple(seeds), tuple(plan))
        result = (rounds_run or {}).get(key) or run_search(
            editor, reward, cond.repeat_interleave(n), seeds, num_steps=num_steps, search="halving" if plan else "full",
            select=select, k=k, halving=HalvingConfig(prune_steps=steps, survivors=kept) if plan else None,
            batch_size=batch_size, reward_batch_size=reward_batch_size, progress=progress)
        if rounds_run is not None:
            rounds_run[key] = result
        candidates += [replace(c, index=c.index + len(candidates), round=len(rounds)) for c in result.candidates]
        nfe += result.nfe
        reward_calls += result.reward_calls
        finished = [c for c in candidates if c.pruned_at is None]
        best = max(finished, key=lambda c: c.value)
        rounds.append({"round": len(rounds), "seeds": seeds, "pruned_at": [list(p) for p in plan], "nfe": result.nfe,
                       "best_seed": best.seed, "best_value": best.value})
        logger.debug("adaptive round %d: %d seeds, %d NFE (total %d of %d), best value %.4f",
                     len(rounds) - 1, n, result.nfe, nfe, budget, best.value)
        if any(confident(c, config) for c in finished):
            stopped = "confident"
            break
    return AdaptiveResult(candidates, nfe, reward_calls, budget, rounds, stopped)
