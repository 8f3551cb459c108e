"""data.hard_negatives: label-free pairs built from the rows themselves, and what the trainer does with them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from editrl.errors import EditRLError
from editrl.reward.data import PreferencePair, add_hard_negatives
from editrl.reward.train import RewardTrainer, collate_pairs, pair_outputs
from editrl.reward.train_config import load_config

from .conftest import TINY_YAML, tiny_config


def pair(i: int, kind: str = "strict", label: float = 1.0, if_score: float = 4.0) -> PreferencePair:
    return PreferencePair(pair_id=f"p{i}", source=f"src{i}", instruction=f"instruction {i}", chosen=f"good{i}",
                          rejected=f"bad{i}", chosen_scores=(if_score, 3.0), rejected_scores=(1.0, 3.0), label=label,
                          kind=kind)


def test_each_kind_is_built_from_the_chosen_edit():
    pairs = [pair(0), pair(1), pair(2, kind="tie", label=0.5), pair(3, kind="disentangled")]
    out, added = add_hard_negatives(pairs, ["unchanged_source", "other_instruction"], seed=0)
    assert out[:4] == pairs and added == {"unchanged_source": 2, "other_instruction": 2}  # strict pairs only
    negatives = {p.pair_id: p for p in out[4:]}
    assert set(negatives) == {"p0#unchanged", "p1#unchanged", "p0#instruction", "p1#instruction"}
    unchanged = negatives["p0#unchanged"]
    assert (unchanged.chosen, unchanged.rejected, unchanged.rejected_instruction) == ("good0", "src0", None)
    swapped = negatives["p1#instruction"]
    assert swapped.chosen == swapped.rejected == "good1" and swapped.instruction == "instruction 1"
    assert swapped.rejected_instruction not in (None, "instruction 1")
    assert all(p.kind == "negative" and p.label == 1.0 and p.chosen_scores is None for p in negatives.values())


def test_min_score_keeps_only_good_winners_and_unknown_kinds_are_refused():
    pairs = [pair(0, if_score=4.0), pair(1, if_score=2.0)]
    _, added = add_hard_negatives(pairs, ["unchanged_source"], min_score=3.0)
    assert added == {"unchanged_source": 1}
    with pytest.raises(EditRLError, match="hard_negatives"):
        add_hard_negatives(pairs, ["deleted"])
    with pytest.raises(EditRLError, match="hard_negatives"):
        load_config(TINY_YAML, ["data.hard_negatives=[unchanged]"])
    with pytest.raises(EditRLError, match="regression"):
        load_config(TINY_YAML, ["data.hard_negatives=[unchanged_source]", "loss.type=regression"])


def test_the_rejected_side_is_scored_under_its_own_instruction():
    seen = []

    def model(sources, instructions, edits):
        seen.append(list(instructions))
        return torch.zeros(len(edits), 2, 2)

    negative = add_hard_negatives([pair(0), pair(1)], ["other_instruction"], seed=0)[0][2]
    images = ("S", "C", "R")
    batch = collate_pairs([(negative, images), (pair(1), images)])
    pair_outputs(model, batch)
    assert seen == [["instruction 0", "instruction 1", negative.rejected_instruction, "instruction 1"]]


def test_trainer_adds_them_to_training_pairs_only(tmp_path):
    config = tiny_config(tmp_path / "run", "data.hard_negatives=[unchanged_source]")
    trainer = RewardTrainer(config)
    strict = trainer.train_summary["strict_pairs"]
    assert trainer.train_summary["hard_negatives"] == {"unchanged_source": strict}
    assert sum(p.kind == "negative" for p in trainer.train_pairs) == strict
    assert not any(p.kind == "negative" for p in trainer.val_pairs)
    assert trainer.train_summary["pairs"] == len(trainer.train_pairs)


def test_frozen_backbone_trains_the_heads_only(tmp_path):
    config = tiny_config(tmp_path / "run", "model.train_backbone=false", "model.read_at=before_reward_token",
                         "max_steps=2")
    trainer = RewardTrainer(config)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    moved = {name for name, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[name])}
    assert moved and all(name.startswith("rm_heads.") for name in moved)
    assert len(moved) == len([n for n in before if n.startswith("rm_heads.")])
    with pytest.raises(EditRLError, match="train_backbone"):
        load_config(TINY_YAML, ["model.train_backbone=false", "model.lora={}"])


def test_a_run_saved_before_the_options_existed_resumes(tmp_path):
    """A checkpoint's config written before read_at, train_backbone, hard negatives and per_dimension existed resumes
    with their old behaviour, and not with any other value."""
    import json

    from editrl.runs import check_resume_config

    config = tiny_config(tmp_path / "run")
    saved = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    for section, key in (("model", "read_at"), ("model", "train_backbone"), ("data", "hard_negatives"),
                         ("data", "hard_negatives_min_score"), ("data", "swap_words"), ("loss", "per_dimension")):
        del saved[section][key]
    check_resume_config(saved, config, ())
    with pytest.raises(EditRLError, match="read_at"):
        check_resume_config(saved, tiny_config(tmp_path / "run", "model.read_at=before_reward_token"), ())


def test_per_dimension_reaches_the_training_loss(tmp_path):
    """batch_loss hands the pairs' per-dimension labels to the loss: per_dimension > 0 changes it."""
    from editrl.reward.train import batch_loss

    losses = []
    for weight in (0.0, 2.0):
        trainer = RewardTrainer(tiny_config(tmp_path / f"w{weight}", f"loss.per_dimension={weight}"))
        batch = next(iter(trainer.micro_batches(0)))
        with torch.no_grad():
            losses.append(batch_loss(trainer.model, trainer.fuse, batch, trainer.config)[0].sum())
    assert losses[1] > losses[0] + 1e-3


def test_a_chosen_edit_equal_to_the_source_wins_no_unchanged_negative():
    same = dataclasses.replace(pair(0), chosen="src0")
    _, added = add_hard_negatives([same, pair(1)], ["unchanged_source"])
    assert added == {"unchanged_source": 1}


def test_swap_word_replaces_one_attribute_word_by_another_of_its_class():
    import random

    from editrl.reward.data import SWAP_WORDS, swap_word

    classes = [["red", "blue"], ["small", "large"]]
    outs = {swap_word("Make the red ring small.", classes, random.Random(s)) for s in range(20)}
    assert outs == {"Make the blue ring small.", "Make the red ring large."}  # one word, either class, never both
    assert swap_word("Red square to the left.", [["red", "green"]], random.Random(0)) == "Green square to the left."
    assert swap_word("MAKE THE RED RING", [["red", "green"]], random.Random(0)) == "MAKE THE GREEN RING"
    assert swap_word("Remove the ring.", classes, random.Random(0)) is None  # nothing to swap: no negative
    assert swap_word("Make it bluer.", classes, random.Random(0)) is None  # whole words only
    for s in range(50):  # the default classes: every swap changes exactly one word, to another of its class
        before = "Turn the yellow square pink and move it to the top left.".split()
        after = swap_word(" ".join(before), SWAP_WORDS, random.Random(s)).split()
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        assert len(changed) == 1 and any({changed[0][0].strip("."), changed[0][1].strip(".")} <= set(c) for c in SWAP_WORDS)


def test_swapped_word_negatives_pair_the_chosen_edit_with_itself_under_the_swapped_instruction():
    pairs = [dataclasses.replace(pair(0), instruction="Make the red ring small."), pair(1)]  # "instruction 1": no word
    out, added = add_hard_negatives(pairs, ["swapped_word"], seed=0, swap_words=[["red", "blue"]])
    assert added == {"swapped_word": 1} and len(out) == 3
    negative = out[2]
    assert (negative.pair_id, negative.chosen, negative.rejected) == ("p0#swapped", "good0", "good0")
    assert (negative.instruction, negative.rejected_instruction) == ("Make the red ring small.", "Make the blue ring small.")
    assert negative.kind == "negative" and negative.label == 1.0 and negative.chosen_scores is None


@pytest.mark.parametrize("classes", [[["red"]], [["red", "red"]], [["red", "red", "blue"]], [["red", "blue"], ["blue", "green"]],
                                     [["dark red", "blue"]], ["red"], [[1, 2]], [[True, False]], []])
def test_bad_swap_word_classes_are_refused_before_training(classes):
    with pytest.raises(EditRLError, match="swap_words"):
        add_hard_negatives([pair(0)], ["swapped_word"], swap_words=classes)
    with pytest.raises(EditRLError, match="swap_words"):
        load_config(TINY_YAML, ["data.hard_negatives=[swapped_word]", f"data.swap_words={classes}"])
    if classes:  # malformed classes are refused even where no swapped_word negative reads them
        with pytest.raises(EditRLError, match="swap_words"):
            load_config(TINY_YAML, [f"data.swap_words={classes}"])


def test_no_swap_classes_are_needed_where_no_swapped_word_negative_is_asked_for():
    assert load_config(TINY_YAML, ["data.swap_words=[]"]).data.swap_words == []
    assert load_config(TINY_YAML, ["data.hard_negatives=[unchanged_source]", "data.swap_words=[]"]).data.swap_words == []
    with pytest.raises(EditRLError, match="non-empty.*swapped_word"):
        load_config(TINY_YAML, ["data.hard_negatives=[swapped_word]", "data.swap_words=[]"])


def test_trainer_swaps_the_words_of_its_config(tmp_path):
    """The synthetic rows' instructions hold no default attribute word; the config's classes reach the trainer."""
    plain = RewardTrainer(tiny_config(tmp_path / "plain", "data.hard_negatives=[swapped_word]"))
    assert plain.train_summary["hard_negatives"] == {"swapped_word": 0}
    config = tiny_config(tmp_path / "run", "data.hard_negatives=[swapped_word]", "data.swap_words=[[brighter, darker]]")
    trainer = RewardTrainer(config)
    negatives = [p for p in trainer.train_pairs if p.kind == "negative"]
    with_word = [p for p in trainer.train_pairs if p.kind == "strict" and p.label == 1.0 and "brighter" in p.instruction.split()]
    assert with_word and len(negatives) == len(with_word) == trainer.train_summary["hard_negatives"]["swapped_word"]
    assert all(p.rejected_instruction == p.instruction.replace("brighter", "darker") for p in negatives)


def test_adding_swapped_word_leaves_the_other_kinds_draws_as_they_were():
    """Each kind draws from a generator of its own: a run with swapped_word added differs from one without only by
    the swapped pairs (the comparison of the two recipes has no other change)."""
    pairs = [dataclasses.replace(pair(i), instruction=f"Make the red ring small {i}.") for i in range(12)]
    without, _ = add_hard_negatives(pairs, ["other_instruction"], seed=3)
    with_swaps, added = add_hard_negatives(pairs, ["other_instruction", "swapped_word"], seed=3)
    assert added["swapped_word"] == 12
    assert [p for p in with_swaps if not p.pair_id.endswith("#swapped")] == without


def test_yaml_booleans_and_an_empty_list_are_refused_with_one_line():
    for value in ("[[on, off]]", "[]", "[[1, 2]]", "red"):
        with pytest.raises(EditRLError, match="swap_words"):
            load_config(TINY_YAML, ["data.hard_negatives=[swapped_word]", f"data.swap_words={value}"])
