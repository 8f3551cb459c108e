"""Validation metrics of `editrl reward train`: what pairwise and per-dimension accuracy count."""

from __future__ import annotations

import pytest
import torch

from editrl.reward.data import EditComparison, PreferencePair, build_pairs
from editrl.reward.train import collate_pairs, metrics_from_statistics, pair_statistics

DIMS = ("instruction_following", "visual_quality")


@pytest.fixture
def images(tmp_path):
    from PIL import Image
    paths = {}
    for name in ("s", "a", "b"):
        paths[name] = str(tmp_path / f"{name}.png")
        Image.new("RGB", (8, 8)).save(paths[name])
    return paths


def comparison(images, row_id: str, scores_a, scores_b) -> EditComparison:
    return EditComparison(row_id=row_id, source=images["s"], instruction="do it", edit_a=images["a"],
                          edit_b=images["b"], scores_a=scores_a, scores_b=scores_b)


def statistics(pairs: list[PreferencePair], margins: dict[str, tuple[float, float]], weights=None) -> dict:
    """Metrics of a model whose chosen-minus-rejected mu per dimension is ``margins[pair_id]`` (``weights``: 0 for
    the padding a process adds to even out its batches)."""
    batch = collate_pairs([(p, ("S", "C", "R")) for p in pairs])
    chosen = torch.zeros(len(pairs), 2, 2)
    rejected = torch.zeros(len(pairs), 2, 2)
    for i, p in enumerate(pairs):
        chosen[i, :, 0] = torch.tensor(margins[p.pair_id])
    stats = pair_statistics(torch.zeros(len(pairs)), chosen, rejected, batch, lambda x: x.mean(1),
                            torch.ones(len(pairs)) if weights is None else torch.tensor(weights))
    return metrics_from_statistics(stats, DIMS)


def test_a_disentangled_tie_counts_once_per_dimension(images):
    # r1 strict: chosen better on instruction following only; r2 a tie (5 = 5) that disentangles into a>b and b>a
    pairs, summary = build_pairs([comparison(images, "r1", (4.0, 2.0), (1.0, 2.0)),
                                  comparison(images, "r2", (4.0, 1.0), (1.0, 4.0))],
                                 score_range=(1.0, 4.0), ties="disentangle", verify_images=False)
    assert summary["ties_disentangled"] == 1 and len(pairs) == 3
    ids = [p.pair_id for p in pairs]
    assert ids == ["r1", "r2#a>b", "r2#b>a"] and [p.mirrored for p in pairs] == [False, False, True]
    # the model ranks the strict pair right on IF, and gets r2 wrong on IF (a above b) but right on VQ
    margins = {"r1": (1.0, 0.0), "r2#a>b": (-1.0, -1.0), "r2#b>a": (1.0, 1.0)}
    metrics = statistics(pairs, margins)
    # IF: r1 right, r2 wrong, counted once each (the mirrored pair would make it 1 of 3)
    assert metrics["accuracy_instruction_following"] == pytest.approx(0.5)
    # VQ: r1 is tied on it (not counted), r2 right once
    assert metrics["accuracy_visual_quality"] == pytest.approx(1.0)
    assert metrics["accuracy"] == pytest.approx(1.0)  # strict pairs only: r1


def test_a_row_without_scores_does_not_hide_its_batch_from_the_per_dimension_accuracy(images):
    scored, _ = build_pairs([comparison(images, "r1", (4.0, 3.0), (1.0, 1.0))], score_range=(1.0, 4.0), verify_images=False)
    unscored = PreferencePair(pair_id="r9", source="s", instruction="do it", chosen="a", rejected="b",
                              chosen_scores=None, rejected_scores=None, label=1.0, kind="strict")
    metrics = statistics([scored[0], unscored], {"r1": (2.0, -1.0), "r9": (1.0, 1.0)})
    assert metrics["accuracy_instruction_following"] == pytest.approx(1.0)
    assert metrics["accuracy_visual_quality"] == pytest.approx(0.0)
    assert metrics["accuracy"] == pytest.approx(1.0)


def test_padding_weighted_zero_is_not_counted(images):
    pairs, _ = build_pairs([comparison(images, "r1", (4.0, 3.0), (1.0, 1.0)), comparison(images, "r2", (4.0, 3.0), (1.0, 1.0))],
                           score_range=(1.0, 4.0), verify_images=False)
    margins = {"r1": (1.0, 1.0), "r2": (-1.0, -1.0)}  # r1 right on both dimensions, r2 wrong
    metrics = statistics(pairs, margins, weights=[1.0, 0.0])
    assert metrics["accuracy_instruction_following"] == metrics["accuracy_visual_quality"] == metrics["accuracy"] == 1.0
    assert statistics(pairs, margins)["accuracy_instruction_following"] == pytest.approx(0.5)
