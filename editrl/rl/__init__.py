"""RL post-training of editors: Flow-GRPO and Diffusion-DPO with LoRA."""
