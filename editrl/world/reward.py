"""The shipped world reward model: a tiny EditReward trained on world preference pairs.

``editrl/world/models/reward/`` is an ``EditReward.save_pretrained`` folder (a Qwen2.5-VL backbone
of hidden size 64, built in code, with the short ``world`` prompt templates); ``TRAINING.md`` beside
it records how it was trained and how to retrain it. Every command that needs a reward and gets none
uses it, so the toolkit runs offline on a laptop CPU.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import EditRLError

WORLD_REWARD_DIR = Path(__file__).parent / "models" / "reward"


def load_world_reward(path: str | Path | None = None, device=None):
    """The shipped world ``EditReward`` (eval mode), or the one in ``path`` (a retrained copy)."""
    from ..reward.model import EditReward

    folder = Path(path) if path is not None else WORLD_REWARD_DIR
    if not (folder / "model.safetensors").is_file():
        raise EditRLError(f"world reward model: {folder} holds no model.safetensors; retrain it as "
                          "editrl/world/models/reward/TRAINING.md describes, or pass the folder of a trained copy")
    return EditReward.from_pretrained(str(folder), device=device)


CORRUPTIONS = ("unchanged", "noise", "blur")


def target_wins(reward, kind: str, n: int = 20, seed: int = 2024) -> int:
    """On ``n`` held-out world examples (test split, ``seed``), how often ``reward`` scores the exact target
    above a corrupted edit: the source left ``"unchanged"``, or the target with ``"noise"`` or ``"blur"``.
    A quick, fixed check of a world reward (the shipped one's figures are in its ``fixed_pairs.json``)."""
    import random

    from .datasets import _quality
    from .examples import make_examples

    if kind not in CORRUPTIONS:
        raise EditRLError(f"kind={kind!r}: expected one of {list(CORRUPTIONS)}")
    examples = make_examples(n, seed=seed, split="test")
    rng = random.Random(seed)
    bad = [ex.source if kind == "unchanged" else _quality(ex.target, kind, rng) for ex in examples]
    sources, instructions = [ex.source for ex in examples], [ex.instruction for ex in examples]
    good = reward.score(sources, instructions, [ex.target for ex in examples], batch_size=n).score
    worse = reward.score(sources, instructions, bad, batch_size=n).score
    return int((good > worse).sum())
