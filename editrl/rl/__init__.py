"""RL post-training of editors: Flow-GRPO and Diffusion-DPO with LoRA."""

from .config import RLConfig, load_config
from .dpo import DPOConfig, DPOTrainer
from .grpo import GRPOConfig, GRPOTrainer
from .monitor import HackingMonitor
from ..reward.specs import build_reward
from .rewards import WeightedReward

__all__ = [
    "DPOConfig", "DPOTrainer", "GRPOConfig", "GRPOTrainer", "HackingMonitor", "RLConfig", "WeightedReward",
    "build_reward", "load_config",
]
