"""The world description judge: the VLM reads the source, the grammar applies the instruction, the VLM judges the edit."""

import random

import numpy as np
import pytest
import torch
from PIL import Image

from editrl.errors import EditRLError
from editrl.world.audit import AUDIT_CATEGORIES, wrong_outcome
from editrl.world.examples import make_examples
from editrl.world.pretrain import Sample, answer_logits, describe, exact_match, greedy_answers, lm_loss, read_scene
from editrl.world.scenes import random_scene
from editrl.world.verifier import DescriptionJudge


@pytest.fixture(scope="module")
def judge():
    from editrl.reward.specs import build_reward

    built = build_reward("world-describe")
    assert isinstance(built, DescriptionJudge)
    return built


def test_read_scene_inverts_describe_and_names_what_is_not_a_scene():
    rng = random.Random(0)
    for _ in range(50):
        scene = random_scene(rng)
        assert read_scene(describe(scene)) == scene.canonical()
    with pytest.raises(EditRLError, match="'red blob small top' is not '<colour> <shape> <size> <position>'"):
        read_scene("white background . red blob small top")
    with pytest.raises(EditRLError, match="expected '<colour> background' first, got 'red circle'"):
        read_scene("red circle . blue square small top")
    for short in ("white background . red circle", "white background . "):
        with pytest.raises(EditRLError, match="is not '<colour> <shape> <size> <position>'"):
            read_scene(short)
    with pytest.raises(EditRLError, match="two objects share a colour"):
        read_scene("white background . red circle small top . red square small left")


def test_the_target_is_the_instruction_applied_to_the_read_source_believing_the_instructions_shape():
    from editrl.world.instructions import parse_instruction

    source = "gray background . red ring large top . blue square small left"
    assert DescriptionJudge.target_description(source, parse_instruction("Make the red ring small.")) == \
        "gray background . red ring small top . blue square small left"
    # the VLM read the red object as a circle; the instruction names a ring, colours are unique: the ring is meant
    assert DescriptionJudge.target_description(source.replace("ring", "circle"), parse_instruction("Move the red ring to the bottom.")) == \
        "gray background . blue square small left . red ring large bottom"
    assert DescriptionJudge.target_description(source, parse_instruction("Remove the green cross.")) is None  # no such object
    assert DescriptionJudge.target_description("gray background . red ring large top . red square small left",
                                               parse_instruction("Make the background white.")) is None  # not a scene
    assert DescriptionJudge.target_description(None, parse_instruction("Make the background white.")) is None  # never ended


def test_greedy_reading_reproduces_the_source_scene_and_what_teacher_forcing_predicts(judge):
    """The shipped VLM reads held-out sources exactly; whatever it decodes (here also blurred editor-like inputs),
    teacher forcing on that answer predicts every token of it (an off-by-one in the decoding position would not)."""
    examples = make_examples(12, seed=21, split="test")
    read = judge.read_sources([e.source for e in examples], batch_size=5)
    assert read == [describe(e.scene) for e in examples]
    half_done = [Sample([Image.blend(e.source, e.target, 0.5)], "describe", "", "describe") for e in examples[:6]]
    decoded = greedy_answers(judge.model, judge.builder, half_done)
    again = [Sample(s.images, "describe", text, "describe") for s, text in zip(half_done, decoded)]
    assert exact_match(judge.model, judge.builder, again) == 1.0
    assert greedy_answers(judge.model, judge.builder, half_done[:2], max_tokens=3) == [None, None]
    # the boundary: an answer of exactly max_tokens tokens is kept, one token fewer allowed is None
    length = len(read[0].split())
    source = [Sample([examples[0].source], "describe", "", "describe")]
    assert greedy_answers(judge.model, judge.builder, source, max_tokens=length) == [read[0]]
    assert greedy_answers(judge.model, judge.builder, source, max_tokens=length - 1) == [None]
    for bad in (0, True, 2.5):
        with pytest.raises(EditRLError, match="max_tokens: expected an integer >= 1"):
            greedy_answers(judge.model, judge.builder, source, max_tokens=bad)


def test_the_score_is_the_log_likelihood_of_the_targets_description(judge):
    """Checked against the pretraining loss on the exact target's description (the source is read exactly):
    minus the token count times the mean cross-entropy; the exact target is near 0, the unchanged source far below."""
    examples = make_examples(4, seed=3, split="test")
    sources, instructions = [e.source for e in examples], [e.instruction for e in examples]
    edits = [examples[0].target, examples[1].source, examples[2].target, examples[3].source]
    out = judge.score(sources, instructions, edits, batch_size=3)
    for i, e in enumerate(examples):
        encoded = judge.builder.encode([Sample([edits[i]], "describe", describe(e.target_scene), "describe")])
        tokens = int((encoded["labels"] != -100).sum())
        with torch.no_grad():
            expected = -tokens * lm_loss(answer_logits(judge.model, encoded), encoded["labels"])
        assert out.score[i].item() == pytest.approx(expected.item(), abs=1e-3)
    assert out.dimensions == ("instruction_following",) and torch.equal(out.mu[:, 0], out.score)
    assert out.score[0] > -0.5 and out.score[2] > -0.5 and out.score[1] < -3 and out.score[3] < -3


def test_the_shipped_judge_rejects_every_kind_of_wrong_outcome(judge):
    """The ruler attacked (the full audit, 100 examples per category, is in docs/world_results.md): on held-out examples the exact
    target beats each clean wrong outcome, the fine categories (wrong value or shape, another object, an extra change)
    included, which the verifier ranks right only 57-74% of the time; so do the held-out categories, which no world
    model was trained against (they come last, so the training categories' cases are drawn as before)."""
    rng = random.Random(0)
    examples = make_examples(30, seed=12, split="test")
    wins = {}
    for category in AUDIT_CATEGORIES:
        cases = [(e, w) for e in examples if (w := wrong_outcome(e, category, rng)) is not None][:12]
        sources, instructions = [e.source for e, _ in cases], [e.instruction for e, _ in cases]
        target = judge.score(sources, instructions, [e.target for e, _ in cases]).score
        wrong = judge.score(sources, instructions, [w for _, w in cases]).score
        wins[category] = float((target > wrong).float().mean())
    assert min(wins.values()) >= 11 / 12, wins


def test_sources_are_read_once_and_the_cache_is_bounded(judge, monkeypatch):
    import editrl.world.pretrain as pretrain

    calls = []
    real = pretrain.greedy_answers
    monkeypatch.setattr(pretrain, "greedy_answers", lambda model, builder, samples, **kw: calls.append(len(samples)) or real(model, builder, samples, **kw))
    monkeypatch.setattr(judge, "read_cache", type(judge.read_cache)())
    monkeypatch.setattr(judge, "cache_size", 2)
    examples = make_examples(3, seed=5, split="test")
    judge.score([examples[0].source] * 4, [examples[0].instruction] * 4, [examples[0].target] * 4)
    judge.score([examples[0].source, examples[1].source], [examples[0].instruction, examples[1].instruction],
                [examples[0].source, examples[1].source])
    assert calls == [1, 1]
    judge.score([examples[1].source], [examples[1].instruction], [examples[1].target])  # a hit: 1 is now the newest
    judge.score([examples[2].source], [examples[2].instruction], [examples[2].target])  # 0, least recently used, goes
    assert calls == [1, 1, 1] and len(judge.read_cache) == 2
    judge.score([examples[1].source], [examples[1].instruction], [examples[1].target])
    assert calls == [1, 1, 1]  # 1 was kept
    judge.score([examples[0].source], [examples[0].instruction], [examples[0].target])
    assert calls == [1, 1, 1, 1]  # 0 was read again
    with pytest.raises(EditRLError, match="cache_size: expected an integer >= 1, got 0"):
        DescriptionJudge(cache_size=0)


def test_identity_and_bad_input(judge):
    from editrl.reward.identity import reward_identity

    identity = reward_identity(judge)
    assert identity["class"] == "editrl.world.verifier.DescriptionJudge"
    assert identity["config"] == {"image_size": 168, "question": "describe", "reading_tokens": 48, "fallback_answer": "no change"}
    example = make_examples(1, seed=1, split="test")[0]
    with pytest.raises(EditRLError, match="one length"):
        judge.score([example.source], [example.instruction] * 2, [example.target])
    with pytest.raises(EditRLError, match=r"instructions\[0\]: the world description judge knows only world instruction words, not \['sky'\]"):
        judge.score([example.source], ["Make the sky blue."], [example.target])
    # world words that are not a world instruction
    with pytest.raises(EditRLError, match=r"instructions\[0\]: instruction: 'make the red' is not a world instruction"):
        judge.score([example.source], ["Make the red."], [example.target])


def test_a_source_it_cannot_read_falls_back_to_the_verify_question_with_a_warning(judge, caplog, monkeypatch):
    """Noise is no world scene (the VLM's reading never ends or fits nothing): the item is scored as the verifier
    scores it, the others of the batch as before, and the log says so once."""
    from editrl.world.verifier import VerifierReward

    monkeypatch.setattr(judge, "warned", set())
    example = make_examples(1, seed=1, split="test")[0]
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with caplog.at_level("WARNING", logger="editrl.world.verifier"):
        out = judge.score([noise, example.source, noise], [example.instruction] * 3, [example.target] * 3)
    expected = VerifierReward().answer_logprob([noise], [example.instruction], [example.target])
    assert out.score[0].item() == pytest.approx(expected.item(), abs=1e-4) and out.score[2] == out.score[0]
    alone = judge.score([example.source], [example.instruction], [example.target]).score
    assert out.score[1].item() == pytest.approx(alone.item(), abs=1e-4)
    warnings = [r.message for r in caplog.records if "scored by the verify question" in r.message]
    assert len(warnings) == 1


def test_the_default_best_of_n_run_picks_an_edit_the_oracle_rates_at_least_3(tmp_path, capsys):
    """`editrl best-of-n --n 8` with every default (built-in example, shipped editor, world-describe): the edit it
    keeps follows the instruction by the oracle (Likert >= 3) and lost no object."""
    import json

    from editrl.cli import main
    from editrl.world import Oracle
    from editrl.world.examples import builtin_example

    example = builtin_example()
    assert example.instruction == "Put the green circle in the center."
    assert main(["best-of-n", "--n", "8", "--out", str(tmp_path / "run")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["reward"] == "world-describe" and summary["instruction"] == example.instruction
    best = Image.open(tmp_path / "run" / "best.png")
    oracle = Oracle()
    assert oracle.likert([example.source], [example.instruction], [best])[0, 0] >= 3
    assert oracle.measures([example.source], [example.instruction], [best])["lost_object"][0] == 0
