"""benchmarks/world_vlm_probe.py: the AUC, the first-answer-token probability and the probe's samples."""


import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def probe(load_benchmark):
    return load_benchmark("world_vlm_probe")


def test_auc_is_the_share_of_positives_above_negatives_ties_half(probe):
    assert probe.auc([3.0, 2.0], [1.0]) == 1.0
    assert probe.auc([0.0], [1.0, 2.0]) == 0.0
    assert probe.auc([1.0, 1.0], [1.0]) == 0.5
    assert probe.auc([2.0, 0.0], [1.0]) == 0.5


def test_first_answer_probability_is_the_training_loss_view_of_the_first_answer_token(probe):
    from editrl.world.pretrain import PretrainConfig, SequenceBuilder, answer_logits, build_vlm, lm_loss

    config = PretrainConfig(tiny={"hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 64,
                                  "vision_hidden_size": 32, "vision_depth": 1}, image_size=56, seed=3)
    model, processor = build_vlm(config)
    builder = SequenceBuilder(processor, config.image_size)
    same, changed = probe.identical_pairs(3, seed=1)
    samples = same + changed
    got = probe.first_answer_probability(model, builder, samples, "no", batch_size=4)
    for sample, p in zip(samples, got):
        encoded = builder.encode([sample])
        labels = encoded["labels"].clone()
        first = int((labels[0] != -100).nonzero()[0])
        labels[0, first + 1:] = -100
        labels[0, first] = builder.tokenizer.convert_tokens_to_ids("no")  # the loss of answering "no" first
        with torch.no_grad():
            loss = lm_loss(answer_logits(model, encoded), labels)
        assert p == pytest.approx(float(torch.exp(-loss)), rel=1e-5)
    assert 0 < got.min() and got.max() < 1


def test_identical_pairs_share_scenes_and_differ_only_where_changed(probe):
    same, changed = probe.identical_pairs(5, seed=2)
    assert len(same) == len(changed) == 5
    for s, c in zip(same, changed):
        assert np.array_equal(np.asarray(s.images[0]), np.asarray(s.images[1])) and s.answer == "no change"
        assert np.array_equal(np.asarray(s.images[0]), np.asarray(c.images[0]))
        assert not np.array_equal(np.asarray(c.images[0]), np.asarray(c.images[1])) and c.answer != "no change"


def test_verify_samples_pair_the_target_with_outcomes_the_parser_calls_wrong(probe):
    samples = probe.verify_samples(6, seed=4)
    assert len(samples["target"]) == 6 and all(s.answer == "no change" for s in samples["target"])
    wrong = [s for k, v in samples.items() if k != "target" for s in v]
    assert len(samples) >= 6 and all(s.answer != "no change" for s in wrong)
    assert "half-pixels" not in samples  # a partial pixel edit has no clean scene of its own
