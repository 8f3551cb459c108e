"""The oracle against every category of clean wrong outcome, on hand-built scenes (benchmarks/world_oracle_audit.py
runs the same attack on held-out examples). A clean but wrong edit must land at Likert 1-2 on instruction
following, the exact target at 4."""

import random
from dataclasses import replace

import pytest
import torch

from editrl.world.audit import CATEGORIES, wrong_outcome
from editrl.world.examples import example_from
from editrl.world.instructions import parse_instruction
from editrl.world.oracle import Oracle, judge, outcome
from editrl.world.scenes import Scene, WorldObject, parse_scene, render

RING = WorldObject("ring", "red", "large", "center")
SQUARE = WorldObject("square", "blue", "medium", "top left")
CIRCLE = WorldObject("circle", "green", "small", "bottom right")
SOURCE = Scene("white", (SQUARE, RING, CIRCLE))
SMALL_RING = replace(RING, size="small")
TARGET = Scene("white", (SQUARE, SMALL_RING, CIRCLE))  # "Make the red ring small."


def if_score(edit_scene: Scene, instruction: str = "Make the red ring small.", source: Scene = SOURCE) -> float:
    return float(Oracle().score([render(source)], [instruction], [render(edit_scene.canonical())]).mu[0, 0])


def likert(value: float) -> int:
    return 1 + sum(value >= t for t in Oracle().config.likert_thresholds)


def test_exact_target_is_likert_4_and_exactly_right():
    assert if_score(TARGET) == pytest.approx(1.0)
    assert outcome(TARGET, render(TARGET)) == outcome(TARGET, render(TARGET)) and outcome(TARGET, render(TARGET)).exact
    assert not outcome(TARGET, render(TARGET)).lost_object


@pytest.mark.parametrize("category, edit, expected", [
    # the edited object deleted instead of made small: the first oracle gave this 0.78
    ("deleted", Scene("white", (SQUARE, CIRCLE)), 0.0),
    ("other-object", Scene("white", (replace(SQUARE, size="small"), RING, CIRCLE)), 0.0),
    ("wrong-value", Scene("white", (SQUARE, replace(RING, size="medium"), CIRCLE)), 0.0),
    ("unchanged", SOURCE, 0.0),
    ("extra-change", Scene("white", (SQUARE, SMALL_RING, replace(CIRCLE, position="bottom"))), 0.4),
    ("extra-change (recolour counts once)", Scene("white", (SQUARE, SMALL_RING, replace(CIRCLE, color="yellow"))), 0.4),
    ("extra-change (resize)", Scene("white", (SQUARE, SMALL_RING, replace(CIRCLE, size="large"))), 0.4),
    ("other-deleted", Scene("white", (SMALL_RING, CIRCLE)), 0.4),
    ("added", Scene("white", (SQUARE, SMALL_RING, CIRCLE, WorldObject("cross", "yellow", "small", "left"))), 0.4),
    ("background", Scene("black", (SQUARE, SMALL_RING, CIRCLE)), 0.4),
    ("wrong-shape", Scene("white", (SQUARE, replace(SMALL_RING, shape="circle"), CIRCLE)), 0.0),
    ("emptied", Scene("white", ()), 0.0),
    ("two unrequested changes", Scene("black", (SMALL_RING, CIRCLE)), 0.16),
])
def test_clean_wrong_outcomes_are_likert_1_or_2(category, edit, expected):
    # the object score is exact: 0.4 per unrequested change, 0 when the requested edit is not there;
    # instruction following is at most that (the pixel score may take more for a changed background)
    assert judge([SOURCE, TARGET], edit.canonical()).score(0.6) == pytest.approx(expected, abs=1e-9), category
    value = if_score(edit)
    assert value <= expected + 1e-6 and likert(value) <= 2


def test_deleting_the_object_is_a_lost_object_not_an_exact_edit():
    deleted = render(Scene("white", (SQUARE, CIRCLE)))
    assert outcome(TARGET, deleted) == type(outcome(TARGET, deleted))(exact=False, lost_object=True)
    assert outcome(TARGET, render(SOURCE)) == type(outcome(TARGET, deleted))(exact=False, lost_object=False)


COMPOSITION = "Move the red ring to the top, then make the blue square large."
COMPOSED = Scene("white", (replace(SQUARE, size="large"), replace(RING, position="top"), CIRCLE))


def test_half_of_a_composition_scores_half():
    only_move = Scene("white", (SQUARE, replace(RING, position="top"), CIRCLE))
    only_resize = Scene("white", (replace(SQUARE, size="large"), RING, CIRCLE))
    assert if_score(COMPOSED, COMPOSITION) == pytest.approx(1.0)
    assert if_score(only_move, COMPOSITION) == pytest.approx(0.5)
    assert if_score(only_resize, COMPOSITION) == pytest.approx(0.5)


def test_duplicated_and_half_pixel_moves_are_rejected():
    example = example_from(SOURCE, parse_instruction(COMPOSITION), COMPOSITION, 64)
    rng = random.Random(0)
    for category in ("duplicated", "half-pixels"):
        image = wrong_outcome(example, category, rng)
        assert image is not None
        value = float(Oracle().score([example.source], [COMPOSITION], [image]).mu[0, 0])
        assert likert(value) <= 2, category
        assert not outcome(example.target_scene, image).exact
    # the left-behind ring is visible to the parser as a second red object
    duplicated = parse_scene(__import__("numpy").asarray(wrong_outcome(example, "duplicated", rng)))
    assert [o.position for o in duplicated.objects if o.color == "red"] == ["top", "center"]


def test_judge_names_the_unrequested_changes():
    scenes = [SOURCE, TARGET]
    verdict = judge(scenes, Scene("black", (SMALL_RING, replace(CIRCLE, color="yellow"))))
    assert verdict.completion == 1.0
    assert sorted(verdict.unrequested) == ["background black", "blue square deleted", "green circle recoloured yellow"]


def test_every_audit_category_applies_somewhere_and_is_rejected():
    from editrl.world.examples import make_examples

    rng, seen = random.Random(1), set()
    oracle = Oracle()
    for example in make_examples(60, seed=9, split="test"):
        for category in CATEGORIES:
            image = wrong_outcome(example, category, rng)
            if image is None:
                continue
            seen.add(category)
            assert likert(float(oracle.score([example.source], [example.instruction], [image]).mu[0, 0])) <= 2, category
    assert seen == set(CATEGORIES)


def test_instruction_following_fusion_scores_the_instruction_alone():
    from editrl.reward.specs import build_reward
    from editrl.world.oracle import OracleConfig

    deleted, blurred = render(Scene("white", (SQUARE, CIRCLE))), render(TARGET).filter(__import__("PIL.ImageFilter").ImageFilter.GaussianBlur(1.0))
    sources, instructions = [render(SOURCE)] * 2, ["Make the red ring small."] * 2
    mean = Oracle().score(sources, instructions, [deleted, blurred])
    only_if = build_reward("oracle-if").score(sources, instructions, [deleted, blurred])
    assert torch.equal(only_if.mu, mean.mu) and torch.equal(mean.score, mean.mu.mean(1))
    assert torch.equal(only_if.score, mean.mu[:, 0])
    # under "mean" the clean deletion earns its visual quality (0.5); instruction following alone gives it 0
    assert mean.score[0] == pytest.approx(0.5) and only_if.score[0] == 0.0
    with pytest.raises(__import__("editrl.errors").errors.EditRLError, match="fusion"):
        Oracle(OracleConfig(fusion="max")).score(sources, instructions, [deleted, blurred])


def test_exact_fusion_pays_only_the_exact_edit():
    from editrl.reward.specs import build_reward

    exact, deleted = render(TARGET), render(Scene("white", (SQUARE, CIRCLE)))
    unchanged = render(SOURCE)
    sources, instructions = [render(SOURCE)] * 3, ["Make the red ring small."] * 3
    out = build_reward("oracle-exact").score(sources, instructions, [exact, unchanged, deleted])
    # right = 1, wrong = 0 whether an object was lost or not: no visual quality to earn by deleting
    assert out.score.tolist() == [1.0, 0.0, 0.0]
    kept = build_reward("oracle-exact-kept").score(sources, instructions, [exact, unchanged, deleted])
    assert kept.score.tolist() == [1.0, 0.0, -1.0]  # the deletion charged
    assert torch.equal(out.mu, Oracle().score(sources, instructions, [exact, unchanged, deleted]).mu)
