"""RL post-training of editors: Flow-GRPO, Diffusion-DPO and DiffusionNFT with LoRA."""

from ..reward.specs import build_reward
from .config import RLConfig, load_config
from .dpo import DPOConfig, DPOTrainer
from .grpo import GRPOConfig, GRPOTrainer
from .monitor import HackingMonitor
from .nft import NFTConfig, NFTTrainer
from .rewards import WeightedReward

__all__ = [
    "DPOConfig", "DPOTrainer", "GRPOConfig", "GRPOTrainer", "HackingMonitor", "NFTConfig", "NFTTrainer", "RLConfig", "WeightedReward",
    "build_reward", "load_config",
]
