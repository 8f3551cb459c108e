"""RL post-training of editors: Flow-GRPO, Diffusion-DPO and DiffusionNFT with LoRA.

Names load on first use (``editrl.registry.lazy_exports``): the configs are torch-free, the trainers are not.
"""

from ..registry import lazy_exports

_EXPORTS = {
    "DPOConfig": "config", "GRPOConfig": "config", "NFTConfig": "config", "RLConfig": "config", "load_config": "config",
    "DPOTrainer": "dpo", "GRPOTrainer": "grpo", "NFTTrainer": "nft", "HackingMonitor": "monitor",
    "WeightedReward": "rewards", "build_reward": "rewards",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
