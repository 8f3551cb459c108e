"""editrl: make instruction-based image editors better with a learned reward.

Sub-packages, each with one job:

- ``editrl.reward``  — EditReward: model, losses, data, training, scoring, metrics, serving.
- ``editrl.sampler`` — editor adapters over diffusers pipelines, best-of-N and pruned search.
- ``editrl.rl``      — Flow-GRPO and Diffusion-DPO post-training with LoRA.
- ``editrl.world``   — a procedural editing world with an exact oracle and shipped tiny models.
"""

__version__ = "0.1.0"
