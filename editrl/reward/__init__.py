"""EditReward: a Qwen2.5-VL reward model with one Gaussian head per editing dimension."""

from .eval import evaluate
from .model import EditReward, EditRewardConfig, fuse
from .output import DIMENSIONS, RewardFunction, RewardOutput
from .score import score_table

__all__ = ["DIMENSIONS", "EditReward", "EditRewardConfig", "RewardFunction", "RewardOutput", "evaluate", "fuse", "score_table"]
