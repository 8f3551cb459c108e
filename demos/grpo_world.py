"""A few Flow-GRPO iterations on the world editor with the oracle as reward (about a minute on a CPU).

    python demos/grpo_world.py

The same trainer runs FLUX.1-Kontext or Qwen-Image-Edit from configs/grpo/*.yaml (``editrl grpo --config``).
"""

from pathlib import Path

from editrl.files import fresh_folder
from editrl.rl import GRPOConfig, GRPOTrainer, load_config

out = fresh_folder("runs/demo-grpo")  # runs/demo-grpo, then -2, ... on later runs
config = load_config(GRPOConfig, Path(__file__).parents[1] / "configs" / "grpo" / "world.yaml", [
    "rewards={oracle: 1.0}", "num_iterations=6", "eval_every=3", "eval_prompts=4", f"output_dir={out}",
])
summary = GRPOTrainer(config).train()
print(summary)
print(f"wrote {out}; use its LoRA with: editrl best-of-n --lora {out}/lora")
