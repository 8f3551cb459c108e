"""overlap_reward: rollout batches are scored while the next is sampled, the rewards of a mix concurrently; the
results are bit-identical to scoring inline."""

import json
import time

import pytest
import torch
from PIL import Image
from toys import Brightness, Timed, small_config

from editrl.errors import EditRLError
from editrl.rl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, NFTConfig, NFTTrainer
from editrl.rl.lora import lora_state
from editrl.rl.rewards import WeightedReward

ALGORITHMS = {"grpo": (GRPOConfig, GRPOTrainer), "nft": (NFTConfig, NFTTrainer), "dpo": (DPOConfig, DPOTrainer)}


def _editor():
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.tiny import tiny_flux_kontext

    return FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=4)


def _trainer(algorithm, prompts, tmp_path, reward, overlap, **overrides):
    config_class, trainer_class = ALGORITHMS[algorithm]
    cfg = small_config(config_class, tmp_path, **{"batch_size": 2, "overlap_reward": overlap,
                                                  "output_dir": str(tmp_path / f"{algorithm}-{overlap}"), **overrides})
    return trainer_class(cfg, editor=_editor(), reward=reward, train_prompts=prompts, eval_prompts=prompts)


@pytest.mark.parametrize("algorithm", ["grpo", "nft", "dpo"])
def test_overlapped_run_matches_the_sequential_one_bit_for_bit(algorithm, prompts, tmp_path):
    runs = {}
    for overlap in (False, True):
        # a slow reward that draws from torch's global generator: with the overlap it runs during sampling
        trainer = _trainer(algorithm, prompts, tmp_path, Timed(delay=0.02), overlap)
        trainer.train()
        log = [json.loads(line) for line in trainer.log_path.read_text().splitlines()]
        runs[overlap] = (log, lora_state(trainer.transformer), trainer.last_scoring.result().score)
        assert len(trainer.reward.calls) == 2 * 4  # 2 iterations of 8 rollouts scored in 4 batches of 2
    (log_a, lora_a, scores_a), (log_b, lora_b, scores_b) = runs[False], runs[True]
    assert log_a == log_b  # rewards, advantages' effects, losses, gradient norms: every logged number
    assert all(torch.equal(lora_a[k], lora_b[k]) for k in lora_a)
    assert torch.equal(scores_a, scores_b) and len(scores_a) == 8


def _sampling_events(trainer) -> dict[str, list[float]]:
    """When each rollout batch's sampling started (its initial noise) and ended (its decode)."""
    events = {"start": [], "end": []}
    noise, decode = trainer.editor.initial_noise, trainer.editor.decode

    def timed_noise(*args, **kwargs):
        events["start"].append(time.perf_counter())
        return noise(*args, **kwargs)

    def timed_decode(*args, **kwargs):
        out = decode(*args, **kwargs)
        events["end"].append(time.perf_counter())
        return out

    trainer.editor.initial_noise, trainer.editor.decode = timed_noise, timed_decode
    return events


@pytest.mark.parametrize("overlap", [False, True])
def test_a_slow_reward_scores_batch_0_while_batch_1_is_sampled(overlap, prompts, tmp_path):
    reward = Timed(delay=0.5)
    trainer = _trainer("grpo", prompts, tmp_path, reward, overlap, num_iterations=1, batch_size=4)
    events = _sampling_events(trainer)
    trainer.iteration(0)
    assert len(events["start"]) == len(events["end"]) == len(reward.calls) == 2
    first = reward.calls[0]
    if overlap:  # the reward of batch 0 started before batch 1 was sampled, and was still running when it began
        assert first["start"] < events["end"][1] and first["end"] > events["start"][1]
    else:  # inline: batch 1 is sampled only after batch 0 is scored
        assert first["end"] < events["start"][1]
    scoring = trainer.last_scoring  # the timings benchmarks/rl_throughput.py reports
    assert scoring.reward_seconds >= 2 * 0.5 and scoring.sampling_seconds > 0
    if overlap:  # batch 0's scoring ran while batch 1 was sampled: the trainer waited for less than all of it
        assert scoring.blocked_seconds == scoring.wait_seconds < scoring.reward_seconds
    else:  # sampling time leaves out batch 0's inline scoring (0.5 s; 0.05 s allows for the calls around it)
        assert scoring.blocked_seconds == scoring.reward_seconds and scoring.wait_seconds < 0.5
        assert scoring.sampling_seconds < events["end"][1] - events["start"][0] - 0.5 + 0.05
    assert not any(call["grad"] for call in reward.calls)  # the sampler's no_grad, in the worker thread too


@pytest.mark.parametrize("overlap", [False, True])
def test_a_reward_error_in_the_scoring_thread_is_the_same_one_line(overlap, prompts, tmp_path):
    trainer = _trainer("grpo", prompts, tmp_path, Timed(fail="reward server at http://x: 503"), overlap,
                       num_iterations=1)
    with pytest.raises(EditRLError, match=r"^reward server at http://x: 503$"):
        trainer.train()


def test_the_rewards_of_a_mix_are_scored_concurrently_with_the_same_scores():
    edits = [Image.new("RGB", (8, 8), (v, v, v)) for v in (0, 51, 255)]
    outs = {}
    for concurrent in (False, True):
        a, b = Timed(delay=0.3), Timed(delay=0.3)
        mix = WeightedReward({"a": a, "b": b, "c": Brightness()}, {"a": 1.0, "b": -2.0, "c": 0.5}, concurrent=concurrent)
        with torch.no_grad():
            outs[concurrent] = mix.score([None] * 3, ["x"] * 3, edits)
        (ca,), (cb,) = a.calls, b.calls
        overlapping = ca["start"] < cb["end"] and cb["start"] < ca["end"]
        assert overlapping == concurrent
        assert not ca["grad"] and not cb["grad"]  # the caller's no_grad reaches the threads
    torch.testing.assert_close(outs[True].score, torch.tensor([0.0, 0.2, 1.0]) * (1 - 2 + 0.5), rtol=0, atol=1e-6)
    assert torch.equal(outs[True].mu, outs[False].mu) and torch.equal(outs[True].score, outs[False].score)


def test_an_error_in_one_reward_of_a_mix_is_raised_as_it_was():
    mix = WeightedReward({"a": Timed(delay=0.1), "b": Timed(fail="judge: 3 of 3 answers had no score")},
                         {"a": 1.0, "b": 1.0})
    with pytest.raises(EditRLError, match=r"^judge: 3 of 3 answers had no score$"):
        mix.score([None], ["x"], [Image.new("RGB", (8, 8))])


@pytest.mark.parametrize("overlap", [False, True])
def test_rl_throughput_splits_an_iteration_into_phases_that_sum_to_it(overlap, load_benchmark, prompts, tmp_path):
    bench = load_benchmark("rl_throughput")
    trainer = _trainer("grpo", prompts, tmp_path, Timed(delay=0.3), overlap, num_iterations=1, batch_size=4)
    t = bench.timed_iteration(trainer, 0)
    assert t["sampling"] + t["reward"] + t["training"] == pytest.approx(t["seconds"])
    assert t["reward_busy"] >= 2 * 0.3 and min(t.values()) > 0
    assert (t["reward"] < t["reward_busy"]) if overlap else (t["reward"] == t["reward_busy"])
    summary = bench.summary([{k: v * f for k, v in t.items()} for f in (3, 1, 2)])
    assert summary["seconds"] == round(2 * t["seconds"], 3)  # the median iteration, with its own phases
    assert summary["phase_share"]["reward"] == round(t["reward"] / t["seconds"], 3)
    assert sum(summary["phase_share"].values()) == pytest.approx(1, abs=2e-3)


def test_a_run_resumes_with_overlap_reward_switched(prompts, tmp_path):
    first = _trainer("grpo", prompts, tmp_path, Brightness(), False, num_iterations=1, save_every=1)
    first.train()
    config_class, trainer_class = ALGORITHMS["grpo"]
    cfg = small_config(config_class, tmp_path, batch_size=2, overlap_reward=True, num_iterations=2,
                       output_dir=first.config.output_dir)  # the same run; only overlap_reward differs
    resumed = trainer_class(cfg, editor=_editor(), reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)
    resumed.train(resume=True)
    assert [json.loads(line)["step"] for line in resumed.log_path.read_text().splitlines()] == [1, 2]
