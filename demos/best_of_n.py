"""Best-of-8 versus a pruned search on one world example, judged by the exact oracle.

    python demos/best_of_n.py

With a real editor: ``load_editor("flux-kontext")`` and an EditReward checkpoint as the reward.
"""

from editrl.sampler import best_of_n, load_editor
from editrl.world import Oracle, load_world_reward, make_examples

example = make_examples(1, seed=0, split="test")[0]
editor, reward, oracle = load_editor("world"), load_world_reward(), Oracle()
print(f"instruction: {example.instruction}")
for search in ("full", "halving"):
    result = best_of_n(editor, reward, example.source, example.instruction, n=8, search=search)
    judged = oracle.score([example.source], [example.instruction], [result.best.image]).score.item()
    print(f"{search:>7}: best seed {result.best.seed}, reward {result.best.record['score']:+.3f}, "
          f"oracle {judged:.3f}, NFE {result.nfe}, reward calls {result.reward_calls}")
result.save("outputs/demo-best-of-n")  # best.png, candidates, contact_sheet.png, scores.json
