import random

import numpy as np
import pytest

from editrl.errors import EditRLError
from editrl.world import make_examples, parse_instruction, parse_scene
from editrl.world.instructions import apply_edits
from editrl.world.scenes import COLORS, random_scene, render_array


@pytest.mark.parametrize("size", [64, 96, 128])
def test_parse_inverts_render_exactly(size):
    rng = random.Random(size)
    for _ in range(40):
        scene = random_scene(rng)
        image = render_array(scene, size)
        assert parse_scene(image) == scene
        # clean renders are flat palette colours only
        colors = {tuple(c) for c in image.reshape(-1, 3)}
        assert len(colors) == len(scene.objects) + 1


def test_examples_are_deterministic_and_parse_back():
    a = make_examples(60, seed=4, split="train")
    b = make_examples(60, seed=4, split="train")
    assert [e.instruction for e in a] == [e.instruction for e in b]
    assert all(np.array_equal(np.asarray(x.target), np.asarray(y.target)) for x, y in zip(a, b))
    kinds = {k for e in a for k in e.task.split("+")}
    assert kinds == {"recolor", "remove", "add", "move", "resize", "background"}
    assert any("+" in e.task for e in a)  # compositions of two
    for e in a:
        edits = parse_instruction(e.instruction)
        assert edits == e.edits
        assert apply_edits(parse_scene(np.asarray(e.source)), edits)[-1] == e.target_scene
        assert e.source.size == (64, 64)
        assert not np.array_equal(np.asarray(e.source), np.asarray(e.target))


def test_splits_are_disjoint():
    train = {(repr(e.scene), e.instruction) for e in make_examples(200, 0, "train")}
    test = {(repr(e.scene), e.instruction) for e in make_examples(200, 0, "test")}
    assert not train & test


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(EditRLError, match="not a world instruction"):
        parse_instruction("make it prettier")
    with pytest.raises(EditRLError, match="split"):
        make_examples(1, split="valid")
    scene = make_examples(1, 0)[0].scene
    missing = next(c for c in COLORS if scene.find(c) is None)
    with pytest.raises(EditRLError, match="has no"):
        apply_edits(scene, parse_instruction(f"remove the {missing} circle"))
