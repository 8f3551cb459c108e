"""Score candidate edits of one world example with the shipped world reward and with the exact oracle.

    python demos/score_edits.py

Swap in a real model with ``EditReward.from_pretrained("TIGER-Lab/EditReward-Qwen2.5-VL-7B", ...)``.
"""

from PIL import ImageFilter

from editrl.world import Oracle, load_world_reward, make_examples

example = make_examples(1, seed=0, split="test")[0]
edits = {
    "exact target": example.target,
    "blurred target": example.target.filter(ImageFilter.GaussianBlur(1.5)),
    "unchanged source": example.source,
}
print(f"instruction: {example.instruction}")
for name, reward in (("world reward", load_world_reward()), ("oracle", Oracle())):
    out = reward.score([example.source] * len(edits), [example.instruction] * len(edits), list(edits.values()))
    for label, record in zip(edits, out.to_records()):
        print(f"{name:>12} | {label:<16} | score {record['score']:+.3f} | "
              f"IF {record['mu_instruction_following']:+.3f} | VQ {record['mu_visual_quality']:+.3f}")
