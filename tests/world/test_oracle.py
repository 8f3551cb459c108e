import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from editrl.errors import EditRLError
from editrl.reward import RewardFunction, RewardOutput
from editrl.world import Oracle, make_examples, render
from editrl.world.instructions import Edit


@pytest.fixture(scope="module")
def examples():
    return make_examples(24, seed=11, split="test")


def _noise(image, sigma, seed=0):
    a = np.asarray(image).astype(float) + np.random.default_rng(seed).normal(0, sigma, (image.height, image.width, 3))
    return Image.fromarray(a.clip(0, 255).astype(np.uint8))


def _values(oracle, examples, edits):
    return oracle.score([e.source for e in examples], [e.instruction for e in examples], edits).mu.numpy()


def test_oracle_is_a_reward_function(examples):
    oracle = Oracle()
    assert isinstance(oracle, RewardFunction)
    out = oracle.score([examples[0].source], [examples[0].instruction], [examples[0].target])
    assert isinstance(out, RewardOutput) and out.mu.shape == (1, 2)
    assert float(out.sigma.abs().sum()) == 0.0
    assert float(out.score[0]) == pytest.approx(float(out.mu[0].mean()))


def test_exact_target_scores_four_and_source_one(examples):
    oracle = Oracle()
    srcs, texts = [e.source for e in examples], [e.instruction for e in examples]
    assert (oracle.likert(srcs, texts, [e.target for e in examples]) == 4).all()
    unchanged = oracle.likert(srcs, texts, srcs)
    assert (unchanged[:, 0] == 1).all()  # nothing done
    assert (unchanged[:, 1] == 4).all()  # but a clean picture
    assert np.allclose(_values(oracle, examples, [e.target for e in examples]), 1.0)


def test_noise_and_blur_cost_quality_not_instruction_following(examples):
    oracle = Oracle()
    noised = _values(oracle, examples, [_noise(e.target, 15) for e in examples])
    blurred = _values(oracle, examples, [e.target.filter(ImageFilter.GaussianBlur(0.8)) for e in examples])
    for values in (noised, blurred):
        assert values[:, 0].mean() > 0.95
        assert values[:, 1].mean() < 0.9
    assert noised[:, 1].max() < 0.8
    heavier = _values(oracle, examples, [_noise(e.target, 30) for e in examples])
    assert heavier[:, 1].mean() < noised[:, 1].mean()


def test_partial_composition_scores_in_between():
    oracle = Oracle()
    composed = [e for e in make_examples(80, seed=2, split="train") if len(e.edits) == 2][:8]
    assert composed
    halves = [render(e.edits[0].apply(e.scene), e.size) for e in composed]
    values = _values(oracle, composed, halves)
    assert ((values[:, 0] > 0.25) & (values[:, 0] < 0.75)).all()
    likert = oracle.likert([e.source for e in composed], [e.instruction for e in composed], halves)[:, 0]
    assert ((likert == 2) | (likert == 3)).all()


def test_wrong_object_recoloured_is_penalised():
    oracle = Oracle()
    cases = [e for e in make_examples(200, seed=3) if e.task == "recolor" and len(e.scene.objects) >= 2][:6]
    assert cases
    for e in cases:
        edit = e.edits[0]
        other = next(o for o in e.scene.objects if o.color != edit.color)
        wrong = render(Edit("recolor", other.color, other.shape, edit.value).apply(e.scene), e.size)
        if_value, vq_value = oracle.score([e.source], [e.instruction], [wrong]).mu[0].tolist()
        assert if_value < 0.05 and vq_value == pytest.approx(1.0)
        # recolouring the right object AND a wrong one is also penalised (over-editing)
        both = render(Edit("recolor", other.color, other.shape, next(
            c for c in e.scene.free_colors() if c != edit.value)).apply(e.target_scene), e.size)
        assert 0.3 < oracle.score([e.source], [e.instruction], [both]).mu[0, 0] < 0.5


def test_jpeg_and_resized_edits_are_accepted(examples):
    e = examples[0]
    buffer = io.BytesIO()
    e.target.save(buffer, "JPEG", quality=30)
    big = e.target.resize((128, 128), Image.NEAREST)
    values = Oracle().score([e.source, e.source], [e.instruction] * 2, [buffer.getvalue(), big]).mu
    assert values[0, 1] < 1.0 and values[0, 0] > 0.5
    assert values[1, 0] > 0.9


def test_bad_inputs(examples):
    oracle = Oracle()
    e = examples[0]
    with pytest.raises(EditRLError, match="same length"):
        oracle.score([e.source], [e.instruction, e.instruction], [e.target])
    with pytest.raises(EditRLError, match=r"sources\[0\]: not a world rendering"):
        oracle.score([_noise(e.source, 60)], [e.instruction], [e.target])
    with pytest.raises(EditRLError, match=r"instructions\[0\]"):
        oracle.score([e.source], ["make it nicer"], [e.target])
