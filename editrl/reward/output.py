"""What every reward returns, and the one interface all rewards share.

The in-process EditReward model, the world's exact oracle, the HTTP client of `editrl reward serve`
and a weighted mix of rewards all implement ``RewardFunction``, so best-of-N, RL and filtering take
any of them unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import torch

from ..errors import EditRLError
from ..images import ImageLike

logger = logging.getLogger(__name__)

DIMENSIONS = ("instruction_following", "visual_quality")


@dataclass
class RewardOutput:
    """Scores for a batch of B edits over D dimensions (CPU float32 tensors).

    ``mu`` and ``sigma`` are (B, D) per-dimension Gaussian parameters (sigma = exp(log_sigma), as the
    official heads); ``score`` is the (B,) fused score used to rank edits; ``score_sigma`` its (B,)
    fused sigma. A reward without uncertainty (e.g. the oracle) sets sigma to zeros.
    """

    mu: torch.Tensor
    sigma: torch.Tensor
    score: torch.Tensor
    score_sigma: torch.Tensor
    dimensions: tuple[str, ...] = field(default=DIMENSIONS)

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def to_records(self) -> list[dict]:
        """One JSON-ready dict per edit with stable keys: score, score_sigma, mu_<dim>, sigma_<dim>."""
        records = []
        for i in range(len(self)):
            record = {"score": float(self.score[i]), "score_sigma": float(self.score_sigma[i])}
            for d, dim in enumerate(self.dimensions):
                record[f"mu_{dim}"] = float(self.mu[i, d])
                record[f"sigma_{dim}"] = float(self.sigma[i, d])
            records.append(record)
        return records

    def select(self, index: int | slice | list[int] | torch.Tensor) -> "RewardOutput":
        """The rows ``index`` (an int keeps its batch dimension: one row of a batch is a batch of one)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return RewardOutput(self.mu[index], self.sigma[index], self.score[index], self.score_sigma[index], self.dimensions)

    @staticmethod
    def cat(outputs: Sequence["RewardOutput"]) -> "RewardOutput":
        if not outputs:
            raise ValueError("RewardOutput.cat needs at least one output")
        return RewardOutput(
            mu=torch.cat([o.mu for o in outputs]),
            sigma=torch.cat([o.sigma for o in outputs]),
            score=torch.cat([o.score for o in outputs]),
            score_sigma=torch.cat([o.score_sigma for o in outputs]),
            dimensions=outputs[0].dimensions,
        )


def check_same_length(sources, instructions, edits) -> None:
    """One error line unless a ``score`` call's three sequences are non-empty and of one length."""
    if not (len(sources) == len(instructions) == len(edits)) or not sources:
        raise EditRLError(f"sources, instructions and edits must be non-empty and of one length, got "
                          f"{len(sources)}, {len(instructions)}, {len(edits)}")


def check_positive(value, name: str) -> int:
    """``value`` if it is an integer >= 1 (a bool is not), else one error line naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EditRLError(f"{name}: expected an integer >= 1, got {value!r}")
    return value


def check_batch_size(batch_size, default: int) -> int:
    """The ``batch_size`` of a ``score`` call: ``default`` for None, else an integer >= 1 (one error line naming it)."""
    return default if batch_size is None else check_positive(batch_size, "batch_size")


_TOLD_FIRST_SOURCE: dict[int, object] = {}  # rewards told that hold no attribute (__slots__), kept so their id() stays theirs


def _first_time_told(reward) -> bool:
    """True the first time ``reward`` is told. The mark sits on the object itself (any object, hashable or not), so a
    new reward that reuses a collected one's id() is still told; an object that takes no attribute is remembered by
    id() and kept alive."""
    if getattr(reward, "_editrl_told_first_source", False) or id(reward) in _TOLD_FIRST_SOURCE:
        return False
    try:
        object.__setattr__(reward, "_editrl_told_first_source", True)  # past a frozen dataclass's __setattr__ too
    except (AttributeError, TypeError):
        _TOLD_FIRST_SOURCE[id(reward)] = reward
    return True


def sources_for(reward, sources: Sequence) -> list:
    """Each prompt's source as ``reward`` takes it. A prompt may carry several source images (a list); a reward
    that reads them all says so with ``takes_several_sources = True`` (a generative judge shown every image) and gets
    the lists. Any other gets the first of each (EditReward's official prompt shows one source image), which is
    logged once per reward, naming it."""
    sources = list(sources)
    if getattr(reward, "takes_several_sources", False) or not any(isinstance(s, (list, tuple)) for s in sources):
        return sources
    if _first_time_told(reward):
        logger.warning("reward %s reads one source image: prompts with several are scored against their first",
                       type(reward).__name__)
    return [s[0] if isinstance(s, (list, tuple)) else s for s in sources]


@runtime_checkable
class RewardFunction(Protocol):
    """Anything that scores (source, instruction, edit) triples. A source is one image; a reward may set
    ``takes_several_sources = True`` to be given a list for a prompt with several (see ``sources_for``)."""

    def score(
        self,
        sources: Sequence[ImageLike],
        instructions: Sequence[str],
        edits: Sequence[ImageLike],
        batch_size: int | None = None,
    ) -> RewardOutput: ...
