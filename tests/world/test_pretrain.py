"""Pretraining the world VLM: exact answers, the reward's sequence layout, loss only on answers, resume."""

import random
from dataclasses import replace

import pytest
import torch

from editrl.errors import EditRLError
from editrl.runs import list_checkpoints
from editrl.world.examples import make_examples
from editrl.world.pretrain import (
    PretrainConfig,
    SequenceBuilder,
    answer_logits,
    build_vlm,
    compare,
    describe,
    exact_match,
    lm_loss,
    make_sample,
    pretrain,
    verify_sample,
    vlm_vocabulary,
)
from editrl.world.scenes import Scene, WorldObject

RING = WorldObject("ring", "red", "large", "center")
SQUARE = WorldObject("square", "blue", "medium", "top left")
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 37, "vision_hidden_size": 32, "vision_depth": 1}


def test_describe_and_compare_are_exact_and_in_grid_order():
    scene = Scene("white", (RING, SQUARE))
    assert describe(scene) == "white background . blue square medium top left . red ring large center"
    after = Scene("black", (replace(RING, size="small", position="top"), WorldObject("cross", "green", "small", "left")))
    assert compare(scene, after) == ("background black . blue square removed . green cross added small left . "
                                     "red ring size small . red ring moved top")
    assert compare(scene, scene) == "no change"


def test_every_answer_and_prompt_is_in_the_vocabulary():
    words = set(vlm_vocabulary())
    rng = random.Random(0)
    from editrl.tiny import split_words

    for task in ("describe", "compare", "apply", "verify"):
        for _ in range(50):
            sample = make_sample(task, rng)
            assert set(split_words(sample.answer)) <= words and set(split_words(sample.prompt)) <= words


def test_the_world_verify_templates_ask_the_vlm_its_own_verify_question():
    """templates: world-verify (a reward fine-tuned from the VLM) puts the verify prompt before the reward token."""
    from editrl.reward.prompts import render_prompt, resolve_templates
    from editrl.tiny import split_words

    templates = resolve_templates("world-verify")
    example = make_examples(1, seed=3, split="test")[0]
    prompt = render_prompt(templates, "instruction_following", example.instruction)
    sample = verify_sample(example, random.Random(0))
    assert prompt == sample.prompt + " <|Reward|>"
    for dimension in ("instruction_following", "visual_quality"):
        text = render_prompt(templates, dimension, example.instruction).replace("<|Reward|>", "")
        assert set(split_words(text)) <= set(vlm_vocabulary())


def test_verify_answers_what_differs_from_the_target(monkeypatch):
    """'no change' exactly when the edit is the target; a wrong outcome is named against the target (the
    answer is computed on the clean edit: degradations are switched off here so the test can parse it)."""
    import numpy as np

    from editrl.world import pretrain as module
    from editrl.world.examples import make_examples
    from editrl.world.pretrain import verify_sample
    from editrl.world.scenes import parse_scene

    monkeypatch.setattr(module, "degrade", lambda image, rng: image)
    rng, seen = random.Random(3), []
    for example in make_examples(60, seed=5, split="test"):
        sample = verify_sample(example, rng)
        assert sample.images[0] is example.source and sample.prompt == f"apply: {example.instruction} compare"
        clean = parse_scene(np.asarray(sample.images[1]))
        assert sample.answer == compare(example.target_scene, clean)
        assert (sample.answer == "no change") == (clean == example.target_scene)
        seen.append(sample.answer == "no change")
    assert 0.2 <= sum(seen) / len(seen) <= 0.5  # about a third exact targets: "no change" alone must not pay
    ring_gone = Scene("white", (SQUARE,))
    assert compare(Scene("white", (replace(RING, size="small"), SQUARE)), ring_gone) == "red ring removed"


def test_verify_reads_editor_samples_at_the_share_asked_and_keeps_the_old_stream_at_zero():
    """verify_editor_share: that share of verify samples pairs an editor sample with its own example's instruction,
    answered against that example's target; 0 draws exactly the samples (and rng state) it drew before the option."""
    import numpy as np

    from editrl.world.scenes import parse_scene

    examples = make_examples(4, seed=9, split="train")
    pool = [(examples[0], examples[0].target), (examples[1], examples[1].source), (examples[2], examples[2].target)]
    rng = random.Random(1)
    samples = [make_sample("verify", rng, editor_pool=pool, verify_editor_share=1.0) for _ in range(30)]
    by_source = {id(e.source): e for e, _ in pool}
    for sample in samples:
        example = by_source[id(sample.images[0])]  # every sample is a pool pair, with that pair's instruction
        assert sample.prompt == f"apply: {example.instruction} compare"
        assert sample.answer == compare(example.target_scene, parse_scene(np.asarray(sample.images[1])))
    answers = {id(s.images[0]): s.answer for s in samples}
    assert answers[id(examples[0].source)] == "no change" != answers[id(examples[1].source)]
    shares = [make_sample("verify", random.Random(s), editor_pool=pool, verify_editor_share=0.25).images[0]
              in [e.source for e, _ in pool] for s in range(400)]
    assert 0.18 < np.mean(shares) < 0.32
    old, new = random.Random(5), random.Random(5)
    before = make_sample("verify", old, editor_pool=pool)
    after = make_sample("verify", new, editor_pool=pool, verify_editor_share=0.0)
    assert (before.prompt, before.answer) == (after.prompt, after.answer) and old.getstate() == new.getstate()
    with pytest.raises(EditRLError, match="verify_editor_share"):
        PretrainConfig(verify_editor_share=0.5).validate()  # no editor pool to read
    with pytest.raises(EditRLError, match="verify_editor_share"):
        PretrainConfig(verify_editor_share=1.5, editor_samples=10).validate()


def test_describe_reads_editor_samples_at_editor_share_and_keeps_the_old_stream_at_a_third():
    """editor_share: that share of describe samples reads a pool edit, answered with its parsed scene; the default
    (a third) draws exactly what the sampler drew before the option."""
    import numpy as np

    from editrl.world.scenes import parse_scene

    examples = make_examples(3, seed=9, split="train")
    pool = [(e, e.target) for e in examples]
    edits = {id(edit) for _, edit in pool}
    for share, low, high in ((0.0, 0, 0), (0.8, 0.72, 0.88), (1.0, 1, 1)):
        samples = [make_sample("describe", random.Random(s), editor_pool=pool, editor_share=share) for s in range(300)]
        assert low <= np.mean([id(s.images[0]) in edits for s in samples]) <= high
    read = [s for s in samples if id(s.images[0]) in edits]
    assert all(s.answer == describe(parse_scene(np.asarray(s.images[0]))) for s in read)
    # the stream before the option: the first draw of a describe sample is `random() < 1/3` for an editor sample
    assert PretrainConfig().editor_share == 1 / 3
    drawn = [id(make_sample("describe", random.Random(s), editor_pool=pool).images[0]) in edits for s in range(60)]
    assert drawn == [random.Random(s).random() < 1 / 3 for s in range(60)]
    with pytest.raises(EditRLError, match="editor_share=1.5"):
        PretrainConfig(editor_share=1.5).validate()


@pytest.fixture(scope="module")
def tiny_vlm():
    config = PretrainConfig(tiny=TINY, image_size=56)
    model, processor = build_vlm(config)
    return config, model, SequenceBuilder(processor, config.image_size)


def test_sequences_put_the_loss_on_the_answer_only(tiny_vlm):
    config, model, builder = tiny_vlm
    rng = random.Random(1)
    samples = [make_sample("compare", rng), make_sample("describe", rng)]
    encoded = builder.encode(samples)
    tokenizer = builder.tokenizer
    for row, sample in enumerate(samples):
        labelled = encoded["labels"][row][encoded["labels"][row] != -100].tolist()
        assert labelled == tokenizer(sample.answer)["input_ids"] + [tokenizer.eos_token_id]
        n_images = (encoded["ids"][row] == builder.image_token_id).sum().item()
        assert n_images == len(sample.images) * 4  # 56 px: 2x2 merged tokens per image
    logits = answer_logits(model, encoded)
    assert logits.shape[:2] == encoded["ids"].shape
    # the loss is the mean cross-entropy of the answer tokens given what precedes them (an independent computation)
    expected = []
    for row in range(len(samples)):
        for t in range(1, encoded["ids"].shape[1]):
            if encoded["labels"][row, t] != -100:
                expected.append(-torch.log_softmax(logits[row, t - 1], -1)[encoded["labels"][row, t]])
    assert lm_loss(logits, encoded["labels"]).item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)


def test_exact_match_counts_whole_answers(tiny_vlm, monkeypatch):
    config, model, builder = tiny_vlm
    rng = random.Random(2)
    samples = [make_sample("describe", rng) for _ in range(3)]

    def oracle_logits(model, encoded):  # a model that predicts every answer token, except in row 1
        labels = encoded["labels"]
        logits = torch.zeros(*labels.shape, len(builder.tokenizer))
        target = labels[:, 1:].clamp(min=0)
        logits[:, :-1].scatter_(-1, target.unsqueeze(-1), 1.0)
        last = int((labels[1] != -100).nonzero().max())
        logits[1, last - 1] = 0  # its end token is now a tie, which argmax gives to token 0 (not the end token)
        return logits

    monkeypatch.setattr("editrl.world.pretrain.answer_logits", oracle_logits)
    assert exact_match(model, builder, samples) == pytest.approx(2 / 3)


def test_tiny_pretraining_stops_resumes_and_saves(tmp_path):
    config = PretrainConfig(tiny=TINY, image_size=56, steps=6, batch_size=4, learning_rate=3e-3, warmup_steps=1,
                            checkpoint_every=3, eval_every=6, eval_samples=4, task_weights={"describe": 1.0})
    folder = pretrain(replace(config, max_minutes=1e-9), tmp_path / "run")  # stops after one step, with a checkpoint
    assert folder == tmp_path / "run" and [c.name for c in list_checkpoints(tmp_path / "run")] == ["step-000001"]
    import json

    with open(tmp_path / "run" / "log.jsonl", "a") as f:  # what a killed run logged after its checkpoint
        f.write(json.dumps({"step": 4, "loss": 123.0}) + "\n")
    assert pretrain(config, tmp_path / "run") == tmp_path / "run" / "model"

    from transformers import Qwen2_5_VLForConditionalGeneration

    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "exact_describe" in r] == [6]  # the held-out evaluation at the end
    assert all(r.get("loss") != 123.0 for r in log)  # the resume dropped the record after its checkpoint
    saved = Qwen2_5_VLForConditionalGeneration.from_pretrained(tmp_path / "run" / "model")
    assert saved.config.text_config.hidden_size == 32
    with pytest.raises(EditRLError, match="another config"):
        pretrain(replace(config, learning_rate=1e-2), tmp_path / "run")
    with pytest.raises(EditRLError, match="image_size"):
        pretrain(replace(config, image_size=60), tmp_path / "other")


def test_a_stopped_run_ends_early_with_the_checkpoint_weights(tmp_path):
    config = PretrainConfig(tiny=TINY, image_size=56, steps=6, batch_size=2, learning_rate=3e-3, warmup_steps=1,
                            checkpoint_every=3, eval_every=6, eval_samples=2, task_weights={"describe": 1.0})
    pretrain(replace(config, max_minutes=1e-9), tmp_path / "run")  # stopped after one step
    pretrain(replace(config, max_minutes=1e-9), tmp_path / "run")  # and after the next
    from transformers import Qwen2_5_VLForConditionalGeneration

    state = torch.load(list_checkpoints(tmp_path / "run")[-1] / "trainer_state.pt", weights_only=False)
    assert state["state"]["step"] == 2
    with pytest.raises(EditRLError, match="at step 2 already"):
        pretrain(replace(config, steps=1), tmp_path / "run")
    assert pretrain(replace(config, steps=2), tmp_path / "run") == tmp_path / "run" / "model"  # no step taken
    saved = Qwen2_5_VLForConditionalGeneration.from_pretrained(tmp_path / "run" / "model").state_dict()
    assert all(torch.equal(saved[k], v) for k, v in state["model"].items() if k in saved)


def test_a_changed_length_re_times_the_cosine_from_the_current_step():
    """What resuming with another `steps` relies on: the rebuilt schedule takes the saved step, not the old length."""
    from transformers import get_scheduler

    def scheduler(total):
        return get_scheduler("cosine", torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0),
                             num_warmup_steps=1, num_training_steps=total)

    long = scheduler(100)
    for _ in range(3):
        long.optimizer.step()
        long.step()
    short = scheduler(6)
    short.load_state_dict(long.state_dict())
    short.optimizer.step()
    short.step()
    assert short.get_last_lr()[0] == pytest.approx(scheduler(6).lr_lambdas[0](4))  # step 4 of 6, not of 100
    assert short.get_last_lr()[0] < 0.5
