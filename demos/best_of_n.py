"""Best-of-8 versus a pruned search on the built-in world example, ranked by the world description judge and
judged by the exact oracle (with whether the kept edit is exactly right).

    python demos/best_of_n.py

With a real editor: ``load_editor("flux-kontext")`` and an EditReward checkpoint as the reward.
"""

from editrl.files import fresh_folder
from editrl.reward.specs import build_reward
from editrl.sampler import best_of_n, load_editor
from editrl.world import Oracle
from editrl.world.examples import builtin_example

example = builtin_example()
editor, reward, oracle = load_editor("world"), build_reward("world-describe"), Oracle()
print(f"instruction: {example.instruction}")
for search in ("full", "halving"):
    result = best_of_n(editor, reward, example.source, example.instruction, n=8, search=search)
    judged = oracle.score([example.source], [example.instruction], [result.best.image]).score.item()
    exact = oracle.measures([example.source], [example.instruction], [result.best.image])["exact_edit"].item()
    print(f"{search:>7}: best seed {result.best.seed}, reward {result.best.record['score']:+.3f}, "
          f"oracle {judged:.3f}, exactly right {bool(exact)}, NFE {result.nfe}, reward calls {result.reward_calls}")
out = result.save(fresh_folder("runs/demo-best-of-n"))  # runs/demo-best-of-n, then -2, ... on later runs
print(f"wrote {out}: best.png, the candidates, contact_sheet.png, scores.json")
