"""Selection rules: which number of a ``RewardOutput`` ranks the candidates.

- ``mean``: the fused score (the mean of the per-dimension means for EditReward's default fusion);
- ``lcb``: a lower confidence bound, fused ``score - k * score_sigma`` — prefers candidates the
  reward is sure about, the uncertainty-aware choice;
- ``if`` / ``vq``: one dimension's mean (instruction following / visual quality).
"""

from __future__ import annotations

import torch

from ..errors import EditRLError
from ..reward.output import RewardOutput

SELECT_RULES = ("mean", "lcb", "if", "vq")
_DIMENSION_OF = {"if": "instruction_following", "vq": "visual_quality"}


def check_select(select: str) -> str:
    if select not in SELECT_RULES:
        raise EditRLError(f"select: expected one of {', '.join(SELECT_RULES)}, got {select!r}")
    return select


def selection_values(out: RewardOutput, select: str = "mean", k: float = 1.0) -> torch.Tensor:
    """(B,) values to maximise under the rule ``select``."""
    check_select(select)
    if select == "mean":
        return out.score.float()
    if select == "lcb":
        return (out.score - k * out.score_sigma).float()
    dimension = _DIMENSION_OF[select]
    if dimension not in out.dimensions:
        raise EditRLError(f"select {select!r}: the reward has no {dimension!r} dimension (it has {list(out.dimensions)})")
    return out.mu[:, out.dimensions.index(dimension)].float()
