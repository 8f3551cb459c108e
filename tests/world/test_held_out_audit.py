"""The held-out audit categories: kinds of wrong edit no training generator makes, each rendered as defined, none
equal to the target or the source, all rejected by the oracle; the 13 training categories left bit-identical."""

import hashlib
import random
from dataclasses import replace

import numpy as np
import pytest

from editrl.world.audit import AUDIT_CATEGORIES, CATEGORIES, HELD_OUT_CATEGORIES, wrong_outcome
from editrl.world.examples import example_from, make_examples
from editrl.world.instructions import parse_instruction
from editrl.world.oracle import Oracle, judge
from editrl.world.scenes import Scene, WorldObject, parse_scene

SQUARE = WorldObject("square", "blue", "medium", "top left")
RING = WorldObject("ring", "red", "large", "center")
CIRCLE = WorldObject("circle", "green", "small", "bottom right")
SOURCE = Scene("white", (SQUARE, RING, CIRCLE))


def outcomes(category: str, instruction: str, source: Scene = SOURCE, seeds: int = 20) -> list[Scene | None]:
    """The parsed held-out outcome of (source, instruction) for ``seeds`` generator seeds (None where it does not apply)."""
    example = example_from(source, parse_instruction(instruction), instruction, 64)
    images = [wrong_outcome(example, category, random.Random(seed)) for seed in range(seeds)]
    return [None if image is None else parse_scene(np.asarray(image)) for image in images]


def differences(a: WorldObject, b: WorldObject) -> set[str]:
    return {f for f in ("shape", "color", "size", "position") if getattr(a, f) != getattr(b, f)}


def fingerprint(seed: int) -> str:
    """Every training category's outcome of 40 examples, drawn in turn from one generator, and its state after."""
    digest, rng = hashlib.sha256(), random.Random(seed)
    for example in make_examples(40, seed=seed, split="train"):
        for category in CATEGORIES:
            image = wrong_outcome(example, category, rng)
            digest.update(category.encode() + (b"none" if image is None else np.asarray(image).tobytes()))
    digest.update(repr(rng.random()).encode())
    return digest.hexdigest()


def test_the_training_categories_and_their_outcomes_are_unchanged():
    """Training data is drawn from CATEGORIES with seeded generators: the hashes were computed before the held-out
    categories existed (base 3cf4719), so a held-out change that touched a training outcome or a draw fails here."""
    assert CATEGORIES == ("deleted", "other-object", "wrong-value", "unchanged", "half", "half-pixels", "extra-change",
                          "other-deleted", "added", "background", "wrong-shape", "duplicated", "emptied")
    assert fingerprint(0) == "beb5651cf1758116cc74f5dba769696cd94f6027e3fae59b5d50c080cb181601"
    assert fingerprint(5) == "f754ae1305e365fa1beea0dfa670bda38bde035535f3cd18f927d73201726bbf"
    assert len(HELD_OUT_CATEGORIES) >= 5 and not set(HELD_OUT_CATEGORIES) & set(CATEGORIES)
    assert AUDIT_CATEGORIES == CATEGORIES + HELD_OUT_CATEGORIES


def test_no_training_generator_asks_for_a_held_out_category(monkeypatch):
    """The reward's training pairs, the candidate edits of the reward data and the VLM's verify task only ever
    ask the audit for training categories."""
    import editrl.world.audit as audit
    import editrl.world.datasets as datasets
    from editrl.world.pretrain import verify_sample
    from editrl.world.reward import contrast_candidates

    asked, real = [], audit.wrong_outcome
    def recording(example, category, rng):
        asked.append(category)
        return real(example, category, rng)
    monkeypatch.setattr(audit, "wrong_outcome", recording)
    monkeypatch.setattr(datasets, "wrong_outcome", recording)
    rng = random.Random(0)
    for i, example in enumerate(make_examples(30, seed=4, split="train")):
        contrast_candidates(example, 2, seed=i)
        datasets.corrupted_candidates(example, 3, seed=i)
        verify_sample(example, rng)
    assert set(asked) == set(CATEGORIES)  # every training category is asked for, no held-out one


def test_wrong_kind_gives_the_edited_object_another_kind_of_edit():
    seen = set()
    for scene in outcomes("wrong-kind", "Make the red ring small."):  # resized: recoloured or moved instead
        changed = [o for o in scene.objects if o not in (SQUARE, CIRCLE)]
        assert len(scene.objects) == 3 and len(changed) == 1 and changed[0].shape == "ring"
        assert len(differences(changed[0], RING)) == 1 and changed[0].size == "large"
        seen |= differences(changed[0], RING)
    assert seen == {"color", "position"}
    seen = set()
    for scene in outcomes("wrong-kind", "Remove the red ring.", seeds=30):  # kept, and recoloured, resized or moved
        changed = [o for o in scene.objects if o not in (SQUARE, CIRCLE)]
        assert len(scene.objects) == 3 and len(changed) == 1 and len(differences(changed[0], RING)) == 1
        seen |= differences(changed[0], RING)
    assert seen == {"color", "size", "position"}
    assert outcomes("wrong-kind", "Make the background black.", seeds=3) == [None] * 3
    assert outcomes("wrong-kind", "Add a small yellow cross at the top.", seeds=3) == [None] * 3


def test_also_changed_does_the_edit_and_changes_the_object_more():
    seen = set()
    for scene in outcomes("also-changed", "Make the red ring small."):
        changed = [o for o in scene.objects if o not in (SQUARE, CIRCLE)]
        assert len(scene.objects) == 3 and len(changed) == 1 and changed[0].size == "small"
        assert len(differences(changed[0], RING)) == 2  # the size, and one thing more
        seen |= differences(changed[0], RING) - {"size"}
    assert seen == {"color", "position"}
    seen = set()
    for scene in outcomes("also-changed", "Add a small yellow cross at the top."):  # the right place, not as asked
        new = [o for o in scene.objects if o not in SOURCE.objects]
        assert len(scene.objects) == 4 and len(new) == 1
        assert len(differences(new[0], WorldObject("cross", "yellow", "small", "top"))) == 1
        seen |= differences(new[0], WorldObject("cross", "yellow", "small", "top"))
    assert seen == {"color", "size"}
    assert outcomes("also-changed", "Remove the red ring.", seeds=3) == [None] * 3


def test_also_other_spreads_the_colour_or_the_added_object():
    painted = set()
    for scene in outcomes("also-other", "Make the red ring yellow."):
        yellow = [o for o in scene.objects if o.color == "yellow"]
        assert len(scene.objects) == 3 and replace(RING, color="yellow") in yellow and len(yellow) == 2
        other = next(o for o in yellow if o.shape != "ring")
        assert replace(other, color=next(s.color for s in (SQUARE, CIRCLE) if s.shape == other.shape)) in SOURCE.objects
        painted.add(other.shape)
    assert painted == {"square", "circle"}
    for scene in outcomes("also-other", "Add a small yellow cross at the top."):
        crosses = [o for o in scene.objects if o not in SOURCE.objects]
        assert len(crosses) == 2 and {(o.shape, o.color, o.size) for o in crosses} == {("cross", "yellow", "small")}
        assert "top" in {o.position for o in crosses}
    assert outcomes("also-other", "Make the red ring small.", seeds=3) == [None] * 3


def test_copied_keeps_the_object_and_adds_an_edited_copy():
    for scene in outcomes("copied", "Make the red ring small."):
        new = [o for o in scene.objects if o not in SOURCE.objects]
        assert len(scene.objects) == 4 and len(new) == 1
        assert differences(new[0], replace(RING, size="small")) == {"position"}
        assert new[0].position in SOURCE.free_positions()
    assert outcomes("copied", "Move the red ring to the top.", seeds=3) == [None] * 3  # that is "duplicated"


def test_the_layout_categories_move_the_targets_objects():
    target = Scene("white", (SQUARE, replace(RING, size="small"), CIRCLE))
    for scene in outcomes("swapped", "Make the red ring small."):
        moved = [o for o in scene.objects if o not in target.objects]
        assert len(moved) == 2 and sorted(o.position for o in scene.objects) == sorted(o.position for o in target.objects)
        a, b = moved
        assert replace(a, position=b.position) in target.objects and replace(b, position=a.position) in target.objects
    mirrored = Scene("white", (replace(SQUARE, position="top right"), replace(RING, size="small"),
                               replace(CIRCLE, position="bottom left"))).canonical()
    assert outcomes("mirrored", "Make the red ring small.", seeds=2) == [mirrored] * 2
    # the square at the top left and the circle at the bottom right: no shift keeps both on the grid
    assert outcomes("shifted", "Make the red ring small.", seeds=2) == [None] * 2
    two = Scene("white", (replace(SQUARE, position="top"), RING))
    shifts = {
        tuple(sorted(o.position for o in scene.objects)) for scene in outcomes("shifted", "Make the red ring small.", two)}
    assert shifts == {("bottom", "center"), ("left", "top left"), ("right", "top right")}  # down, left, right; not up
    alone = Scene("white", (RING,))
    for category in ("swapped", "mirrored", "shifted"):  # one object moved is no layout change
        assert outcomes(category, "Make the red ring small.", alone, seeds=3) == [None] * 3
    column = Scene("white", (replace(SQUARE, position="top"), RING, replace(CIRCLE, position="bottom")))
    assert outcomes("mirrored", "Make the red ring small.", column, seeds=2) == [None] * 2


@pytest.mark.parametrize("instruction, edit, expected", [
    # the object score: 0 when the asked edit is not there; 0.4 per unrequested change
    ("Make the red ring small.", Scene("white", (SQUARE, replace(RING, color="yellow"), CIRCLE)), 0.0),  # wrong-kind
    ("Make the red ring small.", Scene("white", (SQUARE, replace(RING, size="small", position="top"), CIRCLE)), 0.0),
    ("Make the red ring yellow.", Scene("white", (replace(SQUARE, color="yellow"), replace(RING, color="yellow"), CIRCLE)),
     0.0),
    ("Make the red ring small.", Scene("white", (SQUARE, RING, CIRCLE, replace(RING, size="small", position="top"))), 0.0),
    # swapped: the square and the circle exchange places, the ring made small: two unrequested changes
    ("Make the red ring small.", Scene("white", (replace(SQUARE, position="bottom right"), replace(RING, size="small"),
                                                 replace(CIRCLE, position="top left"))), 0.16),
])
def test_the_oracle_judges_held_out_outcomes_exactly(instruction, edit, expected):
    scenes = [SOURCE, parse_instruction(instruction)[0].apply(SOURCE)]
    assert judge(scenes, edit.canonical()).score(0.6) == pytest.approx(expected, abs=1e-9)


def test_every_held_out_category_applies_is_new_and_is_rejected_by_the_oracle():
    """On held-out examples (compositions included) each held-out outcome is neither the target nor the source, and
    the oracle rates it Likert 1-2 on instruction following, strictly below the exact target."""
    oracle, rng = Oracle(), random.Random(1)
    seen = {}
    for example in make_examples(60, seed=9, split="test"):
        for category in HELD_OUT_CATEGORIES:
            image = wrong_outcome(example, category, rng)
            if image is None:
                continue
            seen.setdefault(category, set()).add(len(example.edits))
            parsed = parse_scene(np.asarray(image))
            assert parsed not in (example.scene.canonical(), example.target_scene.canonical()), category
            (wrong, _), (right, _) = oracle.evaluate([example.source] * 2, [example.instruction] * 2, [image, example.target])
            assert right == 1.0 and wrong <= 0.5 and oracle.to_likert(__import__("torch").tensor([wrong]))[0] <= 2, category
    assert set(seen) == set(HELD_OUT_CATEGORIES)
    assert all(len(sizes) == 2 for c, sizes in seen.items() if c not in ("also-other", "copied")), seen


def test_an_unknown_category_is_named():
    from editrl.errors import EditRLError

    example = example_from(SOURCE, parse_instruction("Make the red ring small."), "Make the red ring small.", 64)
    with pytest.raises(EditRLError, match="audit category: expected one of .*'shifted'.*, got 'flipped'"):
        wrong_outcome(example, "flipped", random.Random(0))
