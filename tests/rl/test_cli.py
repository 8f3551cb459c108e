"""`editrl grpo` / `editrl dpo` as users run them: a subprocess killed mid-run and resumed, and two
CPU processes under `accelerate launch` sharing group statistics."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

HERE = Path(__file__).parent


def _env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def _config(tmp_path, tiny_pipeline_dir, **overrides):
    data = tmp_path / "prompts.jsonl"
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    with open(data, "w") as f:
        for i, colour in enumerate(colours):
            Image.new("RGB", (64, 64), colour).save(tmp_path / f"src{i}.png")
            f.write(json.dumps({"source": f"src{i}.png", "instruction": f"edit number {i}"}) + "\n")
    values = dict(
        editor=str(tiny_pipeline_dir), resolution=64, num_steps=3, eval_steps=3, group_size=4, groups_per_step=2,
        batch_size=8, num_iterations=4, learning_rate=0.03, lora_rank=4, lora_alpha=4,
        rewards={"toys:Brightness": 1.0}, judge="toys:Darkness", eval_every=2, eval_prompts=2, save_every=1,
        train_data=str(data), eval_data=str(data), output_dir=str(tmp_path / "run"),
    )
    values.update(overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _log(tmp_path):
    return [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]


def test_grpo_cli_killed_then_resumed(tmp_path, tiny_pipeline_dir):
    config = _config(tmp_path, tiny_pipeline_dir, num_iterations=6, ema_update_every=2)  # the EMA (saved) moves at 2, 4, 6
    cmd = [sys.executable, "-m", "editrl.cli", "grpo", "--config", str(config)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    checkpoint = tmp_path / "run" / "checkpoints" / "step-000002"
    deadline = time.time() + 120
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps_before = [r["step"] for r in _log(tmp_path)]
    assert 2 <= max(steps_before) < 6, "the run must be killed mid-way"
    done = subprocess.run(cmd + ["--resume"], env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    log = _log(tmp_path)
    assert [r["step"] for r in log] == [0, 1, 2, 3, 4, 5, 6]  # step 0 = the initial evaluation
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["step"] == 6 and "judge_score" in last and "eval_reward" in last
    for key in ("reward_mean", "reward_std", "kl", "clip_frac", "ratio_mean", "ratio_min", "ratio_max", "policy_loss", "grad_norm"):
        assert key in log[1]
    assert (tmp_path / "run" / "lora" / "pytorch_lora_weights.safetensors").is_file()
    # the final LoRA is what `editrl best-of-n --lora` loads: same seeds, different edits than without it
    from editrl.cli import main

    summaries = {}
    for lora in (None, str(tmp_path / "run" / "lora")):
        argv = ["best-of-n", "--editor", str(tiny_pipeline_dir), "--reward", "toys:Brightness", "--n", "2",
                "--image", str(tmp_path / "src0.png"), "--instruction", "edit number 0", "--out", str(tmp_path / f"bon-{bool(lora)}")]
        assert main(argv + (["--lora", lora] if lora else [])) == 0
        summaries[bool(lora)] = json.loads((tmp_path / f"bon-{bool(lora)}" / "scores.json").read_text())
    scores = {k: [c["score"] for c in v["candidates"]] for k, v in summaries.items()}
    assert scores[True] != scores[False]


def test_dpo_cli_and_bad_config_key(tmp_path, tiny_pipeline_dir, capsys):
    from editrl.cli import main

    config = _config(tmp_path, tiny_pipeline_dir, num_iterations=2, ref_update_every=1, eval_every=0)
    assert main(["dpo", "--config", str(config)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["step"] == 2 and last["pairs"] > 0
    assert main(["dpo", "--config", str(config), "--set", "clip_range=0.1"]) == 2  # a GRPO key: unknown to DPO
    err = capsys.readouterr().err
    assert "clip_range" in err and "Traceback" not in err
    assert main(["grpo", "--config", str(config)]) == 2  # ref_update_every is a DPO key
    assert "ref_update_every" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_gather_group_statistics(tmp_path, tiny_pipeline_dir):
    config = _config(tmp_path, tiny_pipeline_dir, num_iterations=2, eval_every=0, judge=None,
                     rewards={"toys:RecordingBrightness": 1.0}, advantage_mode="batch")
    record = tmp_path / "scores"
    # `--multi_gpu` selects the torchrun launcher; on a machine without GPUs the processes run on the CPU (gloo).
    # (`--cpu --num_processes 2` starts ONE process in accelerate 1.x: multi-CPU there needs MPI.)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "editrl.cli", "grpo", "--config", str(config)]
    done = subprocess.run(cmd, env=_env(EDITRL_TEST_RECORD=str(record)), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    files = sorted(tmp_path.glob("scores.*.jsonl"))
    assert len(files) == 2  # one scoring process per rank
    per_rank = [[json.loads(line) for line in f.read_text().splitlines()] for f in files]
    log = _log(tmp_path)
    assert [r["step"] for r in log] == [1, 2]
    for step, record_ in enumerate(log):
        a, b = per_rank[0][step]["scores"], per_rank[1][step]["scores"]
        assert len(a) == len(b) == 8  # groups_per_step x group_size on each rank
        everything = a + b
        mean = sum(everything) / len(everything)
        std = (sum((s - mean) ** 2 for s in everything) / len(everything)) ** 0.5
        assert record_["reward_mean"] == pytest.approx(mean, abs=1e-6)  # statistics over both processes
        assert record_["reward_std"] == pytest.approx(std, abs=1e-6)
        groups = [g[i: i + 4] for g in (a, b) for i in (0, 4)]  # group_size 4: the within-group spread, averaged
        spreads = [(sum((s - sum(g) / 4) ** 2 for s in g) / 4) ** 0.5 for g in groups]
        assert record_["group_reward_std"] == pytest.approx(sum(spreads) / 4, abs=1e-6)
        assert record_["reward_mean"] != pytest.approx(sum(a) / 8, abs=1e-9)
        assert record_["images"] == 16 * (step + 1)
        # the two processes drew different groups
        assert per_rank[0][step]["instructions"] != per_rank[1][step]["instructions"] or a != b


def test_config_builds_the_editor_with_its_settings(tmp_path, tiny_pipeline_dir):
    from editrl.rl import GRPOConfig, GRPOTrainer, load_config

    config = load_config(GRPOConfig, _config(tmp_path, tiny_pipeline_dir), ["editor_settings={max_sequence_length: 64}"])
    trainer = GRPOTrainer(config)
    assert trainer.editor.max_sequence_length == 64 and trainer.editor.resolution == 64
    assert len(trainer.train_prompts) == 4 and trainer.eval_prompts[0][1] == "edit number 0"
    cond = trainer.encode(trainer.eval_prompts[:1])
    assert cond.batched["prompt_embeds"].shape[1] == 64
