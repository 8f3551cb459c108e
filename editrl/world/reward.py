"""The shipped world reward model: a tiny EditReward trained on world preference pairs.

``editrl/world/models/reward/`` is an ``EditReward.save_pretrained`` folder (a Qwen2.5-VL backbone
of hidden size 128, built in code, with a word-level tokenizer and the short ``world`` prompt
templates); ``TRAINING.md`` beside it records how it was trained and how to retrain it. Every command that needs a reward and gets none
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


def prompt_vocabulary(templates) -> list[str]:
    """The words of a world reward's word-level tokenizer: every word of a world instruction, of the prompt
    ``templates`` and of the Qwen chat template's fixed text (anything else becomes the unknown token)."""
    import re

    from ..reward.prompts import resolve_templates
    from ..tiny import split_words
    from .instructions import vocabulary

    fixed = " ".join(resolve_templates(templates).values()) + " system you are a helpful assistant user"
    fixed = re.sub(r"<\|[^|]*\|>|\{\w+\}", " ", fixed)  # special tokens and placeholders are not words
    return sorted({*vocabulary(), *split_words(fixed)})


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


def contrast_candidates(example, n: int, seed: int) -> list:
    """Two candidate edits for training the world reward, mostly differing in ONE visible factor.

    - 55%: the exact target against one clean wrong outcome of ``editrl.world.audit`` (the object
      deleted instead, another object edited, a wrong value, nothing done, an unrequested change, ...),
      both clean or both with the same degradation: what instruction following is;
    - 25%: the same content (the exact target, or a wrong outcome 30% of the time) clean against noisy,
      blurred or JPEG-compressed: what visual quality is;
    - 20%: a random pair of ``corrupted_candidates`` (content and quality both vary).

    A reward trained mostly on pairs about visual quality learned "fewer objects look cleaner" and
    preferred the target with its edited object deleted to the target itself in 99% of held-out cases;
    the target-against-wrong-outcome pairs teach the instruction. Labels come from the annotators.
    """
    import random

    from .audit import CATEGORIES, wrong_outcome
    from .datasets import _quality, corrupted_candidates

    if n != 2:
        raise EditRLError(f"contrast_candidates makes pairs: asked for {n} candidates, expected 2")
    rng = random.Random(f"contrast-{seed}-{example.instruction}")
    draw = rng.random()
    if draw < 0.55:
        categories = list(CATEGORIES)
        rng.shuffle(categories)
        category, wrong = next(((c, im) for c in categories if (im := wrong_outcome(example, c, rng)) is not None))
        quality = rng.choice(["clean", "clean", "noise", "blur", "jpeg"])
        state = rng.getstate()
        good = _quality(example.target, quality, rng)
        rng.setstate(state)  # the same degradation draw on both
        suffix = "" if quality == "clean" else f"+{quality}"
        pair = [(f"exact{suffix}", good), (f"{category}{suffix}", _quality(wrong, quality, rng))]
    elif draw < 0.8:
        content, base = "exact", example.target
        if rng.random() < 0.3:
            content = rng.choice(CATEGORIES)
            base = wrong_outcome(example, content, rng)
            if base is None:
                content, base = "exact", example.target
        bad = rng.choice(["noise", "blur", "jpeg"])
        pair = [(content, base), (f"{content}+{bad}", _quality(base, bad, rng))]
    else:
        return corrupted_candidates(example, 2, seed)
    rng.shuffle(pair)
    return pair


def editor_pair_candidates(editor, steps: int | None = None):
    """Candidates from the world editor's own samples: two samples of the same prompt (two seeds).

    Only editor-vs-editor pairs: when half of the pairs set an editor sample against a crisp rendered
    ``corrupted_candidates`` edit, the tiny reward learned the editor's soft style as a cue ("the crisp
    image wins") and, at step 700, ranked editor samples below chance against the oracle and preferred
    noisy targets to clean ones. Pairs of two samples differ only in what the editor got right.
    """
    def candidates(example, n: int, seed: int) -> list:
        if n != 2:
            raise EditRLError(f"editor_pair_candidates makes pairs: asked for {n} candidates, expected 2")
        images = editor.sample([example.source] * 2, [example.instruction] * 2, [2 * seed, 2 * seed + 1], num_steps=steps).images
        return [("editor-0", images[0]), ("editor-1", images[1])]

    return candidates


def make_reward_data(out: str | Path, train_pairs: int = 5000, val_pairs: int = 300, editor_pairs: int = 0,
                     editor: str | None = None) -> dict[str, Path]:
    """The data of ``configs/reward/world*.yaml`` in the EditReward-Data schema with annotator labels:
    ``out/train-contrast/train.parquet`` (``train_pairs`` pairs of ``contrast_candidates``, seed 0) and
    ``out/validation/train.parquet`` (``val_pairs`` random pairs of ``corrupted_candidates``, seed 1).
    With ``editor_pairs`` > 0, pairs of the world editor's own samples (``editor_pair_candidates``; the
    shipped editor, or the one in folder ``editor``): ``out/train-contrast/editor/train.parquet``
    (``editor_pairs`` from the train split, seed 2; read together with the contrast pairs) and
    ``out/validation-editor/train.parquet`` (``val_pairs`` from the test split, seed 3): the candidates a
    reward must rank for best-of-N and RL."""
    from .datasets import make_preference_data

    out = Path(out)
    paths = {
        "train": make_preference_data(out / "train-contrast", n=train_pairs, seed=0, edits=contrast_candidates),
        "validation": make_preference_data(out / "validation", n=val_pairs, seed=1),
    }
    if editor_pairs:
        from ..sampler.editors import load_editor

        candidates = editor_pair_candidates(load_editor("world", model=editor))
        paths["editor"] = make_preference_data(out / "train-contrast" / "editor", n=editor_pairs, seed=2, edits=candidates)
        paths["validation-editor"] = make_editor_validation(out, val_pairs, candidates)
    return paths


def make_editor_validation(out: str | Path, n: int = 300, candidates=None) -> Path:
    """``out/validation-editor/train.parquet``: ``n`` pairs of two editor samples on held-out prompts (test
    split, seed 3), from ``candidates`` (default: ``editor_pair_candidates`` of the shipped editor)."""
    from .datasets import make_preference_data

    if candidates is None:
        from ..sampler.editors import load_editor

        candidates = editor_pair_candidates(load_editor("world"))
    return make_preference_data(Path(out) / "validation-editor", n=n, seed=3, edits=candidates, split="test")
