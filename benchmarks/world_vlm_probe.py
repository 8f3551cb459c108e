"""Does a world VLM compare two images? A probe of the base the world reward is fine-tuned from.

Exact match of whole generated answers (what pretraining logs) hides partial skill, and a reward needs one
ability above all: telling an edit that did what the instruction asked from one that did not. This probe
reads only the probability of the first answer token "no" (of "no change") and reports ROC AUCs:

- ``identical_auc``: the ``compare`` prompt on (scene, the same scene) against (scene, the scene after one
  random edit). 1.0 = the model always knows whether two clean images differ; 0.5 = it cannot tell.
- ``verify_auc`` per audit category: the ``verify`` prompt (``apply: <instruction> compare``) on
  (source, exact target) against (source, that category's clean wrong outcome) on held-out examples;
  meaningful for a VLM pretrained on ``verify`` (``configs/world/vlm_verify.yaml``).

``--run`` probes the newest checkpoint of a pretraining run folder (while it trains). Prints one JSON object::

    OMP_NUM_THREADS=1 python benchmarks/world_vlm_probe.py                       # the shipped world VLM
    OMP_NUM_THREADS=1 python benchmarks/world_vlm_probe.py --run runs/world-vlm-long
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from editrl.world.pretrain import (  # noqa: E402
    PretrainConfig,
    Sample,
    SequenceBuilder,
    answer_logits,
    build_vlm,
    compare,
    random_change,
    verify_outcome,
    verify_prompt,
)


def auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counted half (the ROC AUC)."""
    positives, negatives = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float(np.mean((positives > negatives) + 0.5 * (positives == negatives)))


@torch.no_grad()
def first_answer_probability(model, builder: SequenceBuilder, samples: list[Sample], word: str, batch_size: int = 40) -> np.ndarray:
    """P(the first answer token is ``word``) for each sample, read where the model predicts that token."""
    model.eval()
    token = builder.tokenizer.convert_tokens_to_ids(word)
    out = []
    for start in range(0, len(samples), batch_size):
        encoded = builder.encode(samples[start: start + batch_size])
        logits = answer_logits(model, encoded)
        first = (encoded["labels"] != -100).int().argmax(1)  # the first answer position of each row
        out.append(torch.softmax(logits[torch.arange(len(first)), first - 1], -1)[:, token])
    return torch.cat(out).numpy()


def identical_pairs(n: int, seed: int, size: int = 64) -> tuple[list[Sample], list[Sample]]:
    """``n`` (scene, same scene) compare samples and ``n`` (scene, scene after one edit) samples of the same scenes."""
    from editrl.world.scenes import random_scene, render

    rng, same, changed = random.Random(seed), [], []
    while len(same) < n:
        scene = random_scene(rng)
        after = random_change(scene, rng, max_edits=1)
        if compare(scene, after) == "no change":
            continue
        same.append(Sample([render(scene, size), render(scene, size)], "compare", "no change", "compare"))
        changed.append(Sample([render(scene, size), render(after, size)], "compare", compare(scene, after), "compare"))
    return same, changed


def verify_samples(n: int, seed: int) -> dict[str, list[Sample]]:
    """Per audit category (and "target"), verify samples of ``n`` held-out examples."""
    from editrl.world.audit import CATEGORIES
    from editrl.world.examples import make_examples

    rng, out = random.Random(seed), {"target": []}
    for example in make_examples(n, seed=seed, split="test"):
        prompt = verify_prompt(example.instruction)
        out["target"].append(Sample([example.source, example.target], prompt, "no change", "verify"))
        for category in CATEGORIES:
            found = verify_outcome(example, category, rng) if category != "half-pixels" else None
            if found is not None:
                wrong, scene = found
                out.setdefault(category, []).append(Sample([example.source, wrong], prompt, compare(example.target_scene, scene), "verify"))
    return out


def load_vlm(vlm: str | None, run: str | None):
    """(model, builder, where): the VLM folder, or the newest checkpoint of a pretraining run folder."""
    if run is None:
        folder = vlm or "editrl/world/models/vlm"
        config = PretrainConfig(init=str(REPO / folder) if vlm is None else folder)
        model, processor = build_vlm(config)
        return model, SequenceBuilder(processor, config.image_size), folder
    from editrl.runs import STATE_FILE, list_checkpoints

    found = list_checkpoints(run)
    if not found:
        raise SystemExit(f"world_vlm_probe.py: --run {run}: no checkpoints/step-N folder there")
    state = torch.load(found[-1] / STATE_FILE, map_location="cpu", weights_only=False)
    config = PretrainConfig(**state["config"])
    model, processor = build_vlm(config)
    model.load_state_dict(state["model"])
    return model, SequenceBuilder(processor, config.image_size), str(found[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vlm", default=None, help="a world VLM folder (default: the shipped editrl/world/models/vlm)")
    parser.add_argument("--run", default=None, help="a pretraining run folder: probe its newest checkpoint instead")
    parser.add_argument("--pairs", type=int, default=100, help="identical / changed scene pairs")
    parser.add_argument("--examples", type=int, default=60, help="held-out examples for the verify categories")
    parser.add_argument("--seed", type=int, default=777, help="seed of the probe's scenes and examples")
    args = parser.parse_args()
    if args.vlm and args.run:
        parser.error("--vlm and --run: give one of them")
    torch.set_num_threads(1)
    model, builder, where = load_vlm(args.vlm, args.run)
    same, changed = identical_pairs(args.pairs, args.seed)
    identical = auc(first_answer_probability(model, builder, same, "no"), first_answer_probability(model, builder, changed, "no"))
    verify = {k: first_answer_probability(model, builder, v, "no") for k, v in verify_samples(args.examples, args.seed).items()}
    per_category = {k: auc(verify["target"], v) for k, v in verify.items() if k != "target"}
    record = {"vlm": where, "identical_auc": round(identical, 4), "verify_auc": {k: round(v, 4) for k, v in per_category.items()},
              "verify_auc_mean": round(float(np.mean(list(per_category.values()))), 4)}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
