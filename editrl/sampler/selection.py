"""Selection rules: which number of a ``RewardOutput`` ranks the candidates.

- ``fused``: the fused score (the mean of the per-dimension means for EditReward's default fusion);
- ``lcb``: a lower confidence bound, fused ``score - k * score_sigma`` — prefers candidates the
  reward is sure about, the uncertainty-aware choice;
- a dimension name of the reward (EditReward: ``instruction_following``, ``visual_quality``): that
  dimension's mean.

The same words rank rows in ``editrl filter --select``. The older words ``mean``, ``if`` and ``vq``
still work (``LEGACY_RULES``).
"""

from __future__ import annotations

import torch

from ..argtypes import LEGACY_RULES
from ..errors import EditRLError
from ..reward.output import DIMENSIONS, RewardOutput

SELECT_RULES = ("fused", "lcb", *DIMENSIONS)


def check_select(select: str, dimensions: tuple[str, ...] | None = DIMENSIONS) -> str:
    """The rule's current name, checked against ``dimensions`` (the reward's; None: not known before scoring,
    so any other word is taken as a dimension name and checked when the scores arrive)."""
    select = LEGACY_RULES.get(select, select)
    rules = ("fused", "lcb", *(dimensions or ()))
    if select not in rules and (dimensions is not None or not isinstance(select, str) or not select.isidentifier()):
        raise EditRLError(f"select: expected one of {', '.join(rules)}, got {select!r}")
    return select


def selection_values(out: RewardOutput, select: str = "fused", k: float = 1.0) -> torch.Tensor:
    """(B,) values to maximise under the rule ``select`` (fused, lcb or one of ``out``'s dimensions). A NaN (a
    generative judge's unreadable answer under ``failures=count``) becomes -inf: an unscored candidate never wins."""
    select = check_select(select, tuple(out.dimensions))
    if select == "fused":
        values = out.score.float()
    elif select == "lcb":
        values = (out.score - k * out.score_sigma).float()
    else:
        values = out.mu[:, out.dimensions.index(select)].float()
    return torch.where(values.isnan(), -torch.inf, values)
