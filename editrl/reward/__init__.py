"""EditReward: a Qwen2.5-VL reward model with one Gaussian head per editing dimension."""

from .model import EditReward, EditRewardConfig, fuse
from .output import DIMENSIONS, RewardFunction, RewardOutput

__all__ = ["DIMENSIONS", "EditReward", "EditRewardConfig", "RewardFunction", "RewardOutput", "fuse"]
