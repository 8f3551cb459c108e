"""benchmarks/gpu_suite.py: its --tiny run (the GPU run's code paths on toy models), budgets, --parts, bad arguments.

The GPU figures themselves need an H200; these tests keep the one command that measures them working.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["reward", "editor", "rl", "reward_train", "new_editors"]


@pytest.fixture(scope="module")
def suite(load_benchmark):
    return load_benchmark("gpu_suite")


@pytest.fixture(scope="module")
def tiny_run(suite):
    """The whole suite with --tiny (bf16 on the CPU), in this process to spare a second import of torch and
    friends: (exit code, JSON lines)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = suite.main(["--tiny"])
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def figures(lines, part, figure):
    return [r for r in lines if r.get("part") == part and r.get("figure") == figure]


def numbers(record):
    return {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@pytest.mark.slow
def test_tiny_run_reports_every_figure(tiny_run):
    code, lines = tiny_run
    assert code == 0, [r for r in lines if "error" in r]
    head, end = lines[0], lines[-1]
    assert head["suite"] == "gpu_suite" and head["tiny"] is True and head["dtype"] == "bfloat16" and head["parts"] == PARTS
    assert head["device"] == "cpu" and set(head["versions"]) == {"torch", "transformers", "diffusers", "peft"}
    assert end["suite"] == "end" and end["ran"] == PARTS and end["skipped"] == [] and end["failed"] == []
    assert end["within_budget"] is True and 0 < end["seconds"] <= head["budget_s"]
    body = lines[1:-1]
    assert [r["part"] for r in body] == sorted((r["part"] for r in body), key=PARTS.index)  # the suite's order
    assert all("error" not in r for r in body)
    for record in body:  # every time, rate and size is positive; no memory is measured on the CPU
        for key, value in numbers(record).items():
            assert value > 0 or key.endswith("_diff"), (key, record)
        if "peak_memory_gib" in record:
            assert record["peak_memory_gib"] is None
    assert {r["model"] for r in body if r.get("figure") == "build"} == {
        "editreward-tiny", "flux-kontext-tiny", "flux2-klein-tiny-klein", "qwen-image-edit-2511-tiny", "flux2-tiny"}


def test_tiny_reward_scoring_figures(tiny_run):
    _, lines = tiny_run
    scoring = figures(lines, "reward", "scoring")
    assert [(r["batch_size"], r["path"]) for r in scoring] == [(2, "official"), (2, "fast"), (4, "official"), (4, "fast")]
    for r in scoring:
        assert r["items"] == 8 and r["images_per_s"] == pytest.approx(8 / r["seconds"], rel=1e-3)
    rates = {(r["batch_size"], r["path"]): r["images_per_s"] for r in scoring}
    for r in figures(lines, "reward", "fast_vs_official"):
        b = r["batch_size"]
        assert r["speedup"] == pytest.approx(rates[b, "fast"] / rates[b, "official"], rel=2e-3)
        assert r["met"] == (rates[b, "fast"] >= 25 and r["speedup"] >= 1.8)
        assert r["dtype"] == "bfloat16" and 0 <= r["mean_abs_score_diff"] <= r["max_abs_score_diff"] < 0.05
    assert len(figures(lines, "reward", "peak_memory")) == 1


def test_tiny_editor_figures(tiny_run):
    _, lines = tiny_run
    steps = figures(lines, "editor", "denoising_step")
    # target and source latents (side / 16)^2 tokens each, plus Kontext's 512 T5 tokens
    assert [(r["resolution"], r["sequence_tokens"]) for r in steps] == [(32, 2 * 4 + 512), (64, 2 * 16 + 512)]
    (full,) = figures(lines, "editor", "best_of_n")
    assert (full["n"], full["steps"], full["nfe"], full["reward_calls"]) == (8, 4, 8 * 4, 8)
    assert full["reward_share"] == pytest.approx(full["reward_seconds"] / full["seconds"], rel=2e-3) and full["reward_share"] < 1
    assert full["seconds_per_image"] == pytest.approx((full["seconds"] - full["reward_seconds"]) / 8, rel=2e-3)
    assert full["met"] == (full["reward_share"] < 0.1)
    (pruned,) = figures(lines, "editor", "pruned_search")
    # keep 1/2 over the first half of 4 steps prunes 8 -> 2 after step 1 and 2 -> 1 after step 2:
    # NFE 8 + 8 + 2 + 1; rewards 8 + 2 previews and the final edit
    assert (pruned["nfe"], pruned["reward_calls"]) == (19, 11)
    assert pruned["nfe_ratio"] == pytest.approx(19 / 32, rel=1e-3)
    assert pruned["time_ratio"] == pytest.approx(pruned["seconds"] / full["seconds"], rel=2e-3)
    (adaptive,) = figures(lines, "editor", "adaptive_search")
    # a quarter of best-of-8's 32 NFE: a round of 8 seeds (8 at step 0, 2 at step 1, 1 for steps 2-3: 12 NFE) does
    # not fit, one of 4 does (4 + 2 + 2); rewards: 4 + 2 previews and the final edit
    assert (adaptive["nfe"], adaptive["budget"], adaptive["rounds"], adaptive["n"]) == (8, 8, 1, 4)
    assert adaptive["reward_calls"] == 7 and adaptive["stopped_because"] == "budget" and adaptive["nfe_ratio"] == 0.25
    assert adaptive["time_ratio"] == pytest.approx(adaptive["seconds"] / full["seconds"], rel=2e-3)


def test_tiny_rl_and_reward_training_figures(tiny_run):
    import editrl.rl

    _, lines = tiny_run
    rl = {r["algorithm"]: r for r in figures(lines, "rl", "iteration")}
    grpo = rl["grpo"]  # configs/grpo/flux-kontext.yaml's recipe, with a group of 2
    assert (grpo["lora_rank"], grpo["gradient_checkpointing"], grpo["num_steps"], grpo["group_size"]) == (64, True, 6, 2)
    assert grpo["reward_seconds_per_iteration"] < grpo["seconds_per_iteration"]
    if hasattr(editrl.rl, "NFTTrainer") and (ROOT / "configs" / "nft" / "flux-kontext.yaml").is_file():
        assert rl["nft"]["seconds_per_iteration"] > 0
    else:
        assert "no NFTTrainer" in rl["nft"]["skipped"]
    train = {r["mode"]: r for r in figures(lines, "reward_train", "step")}
    assert set(train) == {"lora", "full"}
    assert train["lora"]["lora_rank"] == 64 and train["full"]["lora_rank"] is None
    assert train["lora"]["trainable_params_b"] < train["full"]["trainable_params_b"]
    for r in train.values():
        assert r["pairs_per_step"] == 8 and r["gradient_checkpointing"] is True and math.isfinite(r["loss"])


def test_parts_subset_and_skip_notes_when_the_budget_is_short(suite, capsys):
    """A budget shorter than every estimate: the named parts only, in the suite's order, each skipped with a note."""
    assert suite.main(["--tiny", "--budget", "1", "--parts", "reward_train", "rl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["parts"] == ["rl", "reward_train"] and lines[0]["budget_s"] == 1
    assert [r["part"] for r in lines[1:-1]] == ["rl", "reward_train"]
    for record in lines[1:-1]:
        assert re.fullmatch(r"needs about 3 s, [01] s left of the 1 s budget", record["skipped"])
    assert lines[-1] == {**lines[-1], "ran": [], "skipped": ["rl", "reward_train"], "failed": []}


def test_a_failing_part_is_reported_and_the_next_still_runs(suite, capsys, monkeypatch):
    ran = []

    def fails(ctx):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(suite, "PART_FUNCTIONS", {**suite.PART_FUNCTIONS, "reward": fails, "editor": lambda ctx: ran.append(ctx.scale)})
    assert suite.main(["--tiny", "--parts", "editor", "reward"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[1] == {"part": "reward", "error": "RuntimeError: boom"} and ran == [suite.TINY]
    assert lines[-1] == {**lines[-1], "ran": ["editor"], "skipped": [], "failed": ["reward"]}


def test_budget_compares_time_left_with_each_estimate(suite, monkeypatch):
    budget = suite.Budget(100, suite.TINY)
    monkeypatch.setattr(suite, "START", time.perf_counter() - 10)
    assert budget.skip_note("reward") is None and 89 < budget.left() <= 90
    monkeypatch.setattr(suite, "START", time.perf_counter() - 98)
    assert budget.skip_note("reward") == "needs about 3 s, 2 s left of the 100 s budget"
    assert suite.REAL.needs.keys() == suite.TINY.needs.keys()
    # the real estimates of the default parts fit the default budget with room for the imports; new_editors has its own run
    assert sum(v for k, v in suite.REAL.needs.items() if not k.startswith("new_")) <= 0.9 * 480
    assert sum(v for k, v in suite.REAL.needs.items() if k.startswith("new_")) <= 0.9 * 480


@pytest.mark.parametrize("argv, message", [
    (["--tiny", "--parts", "reward", "vae"],
     "--parts: unknown part 'vae'; expected some of reward, editor, rl, reward_train, new_editors"),
    (["--tiny", "--parts", "rl", "rl"], "--parts: a part is named twice in rl rl"),
    (["--tiny", "--budget", "0"], "--budget: expected a positive number of seconds, got 0"),
    (["--device", "cpu"], "--device cpu: the real sizes (7B reward, 12B editor) need a CUDA GPU; --tiny runs on the CPU"),
    (["--tiny", "--device", "tpu9"], "--device: not a torch device: 'tpu9'"),
])
def test_bad_arguments_get_one_line(suite, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        suite.main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"gpu_suite.py: error: {message}\n"


def test_tiny_new_editors_figures(tiny_run):
    """Each 2026 editor's sampling step and a LoRA GRPO iteration with and without gradient checkpointing, guidance
    branches counted, each editor's own default steps."""
    _, lines = tiny_run
    sampling = {r["editor"]: r for r in figures(lines, "new_editors", "sampling")}
    assert {k: (r["nfe_per_step"], r["default_steps"]) for k, r in sampling.items()} == {
        "flux2-klein": (2, 50), "qwen-image-edit-2511": (2, 40), "flux2": (1, 50)}
    for r in sampling.values():
        assert r["seconds_per_image"] == pytest.approx(r["seconds_per_step"] * r["default_steps"], rel=2e-3)
    grpo = figures(lines, "new_editors", "grpo_iteration")
    assert sorted((r["editor"], r["gradient_checkpointing"]) for r in grpo) == sorted(
        (e, c) for e in sampling for c in (True, False))
    assert all(r["seconds_per_iteration"] > 0 and r["lora_params_m"] > 0 and r["peak_memory_gib"] is None for r in grpo)
    assert {r["model"] for r in figures(lines, "new_editors", "build")} == {
        "flux2-klein-tiny-klein", "qwen-image-edit-2511-tiny", "flux2-tiny"}
