"""EditReward: a Qwen2.5-VL reward model with one Gaussian head per editing dimension.

Names load on first use (``editrl.registry.lazy_exports``), so torch-free modules such as the serve
settings can be imported (by the CLI parser) without loading torch and transformers.
"""

from ..registry import lazy_exports

_EXPORTS = {
    "DIMENSIONS": "output", "RewardFunction": "output", "RewardOutput": "output", "EditReward": "model",
    "EditRewardConfig": "model", "fuse": "model", "evaluate": "eval", "score_table": "score",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
