"""Reward-hacking monitor: the training reward next to a held-out judge on fixed evaluation prompts.

RL maximises whatever the reward model rewards, including its blind spots. A second judge that is
not optimised against (the exact oracle in the world, a different reward model elsewhere) scores the
same evaluation edits; when the training reward keeps rising while the judge falls, the policy is
exploiting the reward rather than editing better, and the monitor says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping

logger = logging.getLogger(__name__)


def _slope(ys: list[float]) -> float:
    """Least-squares slope of ys against 0, 1, 2, ... (per evaluation)."""
    n = len(ys)
    mean_x, mean_y = (n - 1) / 2, sum(ys) / n
    var = sum((i - mean_x) ** 2 for i in range(n))
    return sum((i - mean_x) * (y - mean_y) for i, y in enumerate(ys)) / var


# judge measures for which a rise, not a fall, is bad
RISING_IS_WORSE = ("lost_object",)


@dataclass
class HackingMonitor:
    """Flags divergence between the training reward and the judge over the last ``window`` evaluations.

    A warning is raised when, fitted over the last ``window`` evaluations, the training reward's
    slope is above ``min_rise`` while the judge's score falls faster than ``min_fall`` per evaluation,
    or any of the judge's ``measures`` moves the bad way faster than that (a share of exact edits
    falling, a share of lost objects rising: in the world these catch a policy that learns to delete
    objects even where the judge's score hides it).
    """

    window: int = 3
    min_rise: float = 0.0
    min_fall: float = 0.0
    history: list[dict] = field(default_factory=list)

    def update(self, step: int, train_reward: float, judge: float, measures: Mapping[str, float] | None = None) -> dict | None:
        """Record one evaluation; returns the warning (a JSON-ready dict) if the curves diverge."""
        measures = {name: float(value) for name, value in (measures or {}).items()}
        self.history.append({"step": step, "train_reward": float(train_reward), "judge": float(judge), **measures})
        if len(self.history) < max(self.window, 2):
            return None
        recent = self.history[-self.window :]
        reward_slope = _slope([h["train_reward"] for h in recent])
        slopes = {name: _slope([h[name] for h in recent]) for name in ("judge", *measures) if all(name in h for h in recent)}
        worse = {name: slope for name, slope in slopes.items()
                 if (slope if name in RISING_IS_WORSE else -slope) > self.min_fall}
        if reward_slope <= self.min_rise or not worse:
            return None
        what = ", ".join(f"{'the held-out judge' if n == 'judge' else n} {'rises' if s > 0 else 'falls'} ({s:+.4f}/eval)"
                         for n, s in worse.items())
        warning = {
            "step": step,
            "since_step": recent[0]["step"],
            "train_reward_slope": reward_slope,
            "judge_slope": slopes["judge"],
            "worse": worse,
            "message": f"possible reward hacking: training reward rising ({reward_slope:+.4f}/eval) while {what} "
            f"since step {recent[0]['step']}",
        }
        logger.warning(warning["message"])
        return warning

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])
