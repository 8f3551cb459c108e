"""Training EditReward on tiny Qwen2.5-VL models: learning, resume, NaN stop, LoRA, frozen rows."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from editrl.errors import EditRLError
from editrl.reward import train as train_module
from editrl.reward.train import DataPlan, RewardTrainer, build_reward_model, list_checkpoints
from editrl.reward.train_config import load_config


def records(path, split):
    return [r for r in map(json.loads, (path / "metrics.jsonl").read_text().splitlines()) if r["split"] == split]


def test_training_on_image_dependent_pairs_learns(make_config):
    config = make_config("data.train.num_rows=320", "data.validation.num_rows=128", "max_steps=80",
                         "per_device_batch_size=8", "gradient_accumulation_steps=1", "eval_every=80",
                         "save_every=80", "log_every=10", "lr_scheduler=cosine")
    trainer = RewardTrainer(config)
    before = trainer.evaluate()
    embedding = trainer.model.model.get_input_embeddings().weight
    embedding_before = embedding.detach().clone()
    summary = trainer.train()
    after = summary["validation"]
    train_losses = [r["loss"] for r in records(trainer.output_dir, "train")]
    assert sum(train_losses[-3:]) / 3 < sum(train_losses[:2]) / 2 - 0.1
    assert after["loss"] < before["loss"] - 0.1
    assert 0.35 < before["accuracy"] < 0.65 and after["accuracy"] >= 0.8
    assert after["accuracy_instruction_following"] > 0.75
    # only the <|Reward|> row of the input embeddings moved
    reward_id = trainer.model.inputs.reward_token_id
    changed = (embedding.detach() != embedding_before).any(-1)
    assert changed[reward_id] and changed.sum() == 1
    # the final model is a loadable EditReward folder
    from editrl.reward import model as model_module

    loaded = model_module.EditReward.from_pretrained(summary["final_model"])
    assert loaded.config.fusion == "mean" and summary["step"] == 80 and summary["samples_seen"] == 640


def test_kill_and_resume_sees_every_sample_once(make_config, monkeypatch):
    seen = []
    original = train_module.batch_loss

    def recording(model, fuse, batch, config):
        if model.training:
            seen.append(tuple(batch.pair_ids))
        return original(model, fuse, batch, config)

    monkeypatch.setattr(train_module, "batch_loss", recording)
    # 48 rows -> pairs; 8 pairs per step -> the 6 steps cross an epoch boundary
    straight = make_config("max_steps=6", name="straight")
    summary = RewardTrainer(straight).train()
    straight_seen, seen[:] = list(seen), []

    first = make_config("max_steps=6", "stop_after_steps=3", "save_every=2", name="resumed")
    interrupted = RewardTrainer(first).train()
    assert interrupted["step"] == 3 and interrupted["final_model"] is None
    assert [p.name for p in list_checkpoints(first.output_dir)] == ["step-000002", "step-000003"]
    # a checkpoint cut off while being written (no data_state.json) is ignored on resume
    (Path(first.output_dir) / "checkpoints" / "step-000004").mkdir()
    resumed = RewardTrainer(make_config("max_steps=6", "save_every=2", name="resumed")).train(resume=True)
    assert resumed["step"] == summary["step"] == 6
    assert resumed["samples_seen"] == summary["samples_seen"] == 6 * 8
    assert seen == straight_seen  # same micro-batches, in order: nothing lost, nothing repeated
    a = load_file(str(Path(first.output_dir) / "final" / "model.safetensors"))
    b = load_file(str(Path(straight.output_dir) / "final" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    def losses(c):
        return [r["loss"] for r in records(Path(c.output_dir), "train")]

    assert losses(first) == pytest.approx(losses(straight), abs=1e-6)


def test_a_new_run_in_a_folder_holding_one_is_refused(make_config):
    """Without --resume a second run would overwrite the first one's checkpoints and append to its metrics.jsonl."""
    config = make_config("max_steps=2", "data.validation=null")
    RewardTrainer(config).train()
    metrics = (Path(config.output_dir) / "metrics.jsonl").read_text()
    with pytest.raises(EditRLError, match=r"already holds a run \(metrics.jsonl\): pass --resume to continue it"):
        RewardTrainer(make_config("max_steps=2", "data.validation=null")).train()
    assert (Path(config.output_dir) / "metrics.jsonl").read_text() == metrics


def test_resume_refuses_a_changed_data_order(make_config):
    RewardTrainer(make_config("max_steps=4", "stop_after_steps=2")).train()
    with pytest.raises(EditRLError, match="global_batch: 4 -> 2"):
        RewardTrainer(make_config("max_steps=4", "per_device_batch_size=2")).train(resume=True)


def test_resume_refuses_a_changed_setting(make_config):
    RewardTrainer(make_config("max_steps=4", "stop_after_steps=2")).train()
    with pytest.raises(EditRLError, match=r"written with another config \(it differs in learning_rate, loss.num_nodes\)"):
        RewardTrainer(make_config("max_steps=4", "learning_rate=0.5", "loss.num_nodes=32")).train(resume=True)


def test_data_plan_order_is_a_permutation_per_epoch():
    plan = DataPlan(num_pairs=21, per_device_batch_size=2, num_processes=2, accumulation=2, seed=3)
    assert plan.steps_per_epoch == 2
    single = DataPlan(21, 4, 1, 2, 3)
    batches = iter(plan.micro_batches(0, 0)), iter(plan.micro_batches(0, 1)), iter(single.micro_batches(0, 0))
    for _ in range(8):  # two epochs: two ranks together take exactly what one process takes
        (s0, r0), (s1, r1), (s, one) = (next(b) for b in batches)
        assert s0 == s1 == s and r0 + r1 == one
    epoch0 = [i for _, b in zip(range(4), single.micro_batches(0, 0)) for i in b[1]]
    assert len(set(epoch0)) == 16 and epoch0 == plan.order(0)[:16]
    resumed = next(iter(single.micro_batches(3, 0)))
    assert resumed == (3, single.order(1)[8:12])


def test_nan_loss_stops_with_step_pairs_and_checkpoint(make_config):
    config = make_config("max_steps=6")
    model = build_reward_model(config.model)
    calls = {"n": 0}
    forward = model.forward

    def poisoned(*args):
        out = forward(*args)
        calls["n"] += model.training  # count training forwards only
        return out * float("nan") if calls["n"] == 7 else out  # 2 micro-batches per step: step 4

    model.forward = poisoned
    with pytest.raises(EditRLError) as err:
        RewardTrainer(config, model=model).train()
    message = str(err.value)
    assert "non-finite loss" in message and "at step 4, micro-batch 0" in message
    assert "synthetic-0:" in message and "step-000002" in message


def test_lora_training_merges_into_a_plain_model(make_config):
    config = make_config("model.lora={r: 4, alpha: 8, dropout: 0.0}", "max_steps=2", "learning_rate=1e-2")
    trainer = RewardTrainer(config)
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any(n.startswith("rm_heads") for n in trainable)
    assert not any(n.startswith("model.visual") for n in trainable)
    summary = trainer.train()
    saved = load_file(str(trainer.output_dir / "final" / "model.safetensors"))
    assert not any("lora" in k for k in saved)
    from editrl.reward.model import EditReward

    loaded = EditReward.from_pretrained(summary["final_model"])
    fresh = build_reward_model(config.model)
    key = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(loaded.state_dict()[key], fresh.state_dict()[key])  # adapters merged in


def test_gradient_checkpointing_gives_the_same_training(make_config):
    runs = {}
    for flag in ("true", "false"):
        trainer = RewardTrainer(make_config(f"model.gradient_checkpointing={flag}", "max_steps=2",
                                            "data.validation=null", name=f"gc-{flag}"))
        assert trainer.model.backbone.is_gradient_checkpointing == (flag == "true")
        trainer.train()
        runs[flag] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    assert all(torch.allclose(runs["true"][k], runs["false"][k], atol=1e-6) for k in runs["true"])


@pytest.mark.parametrize("overrides", [
    ("loss.type=regression", "model.head_type=shared"),        # paper Table 4 variant I
    ("loss.type=uncertainty", "model.head_type=shared"),       # variant II
    ("model.fusion=min",), ("model.fusion=sum",),               # variants III, IV (V = tiny.yaml)
    ("loss.type=bt", "data.ties=keep"), ("loss.estimator=mc", "loss.num_samples=1000"),
], ids=lambda o: ",".join(o))
def test_ablation_variants_are_config_only(make_config, overrides):
    trainer = RewardTrainer(make_config(*overrides, "max_steps=2", "data.validation=null"))
    assert trainer.model.config.head_type == trainer.config.model.head_type
    assert len(trainer.model.rm_heads) == (1 if trainer.config.model.head_type == "shared" else 2)
    before = {k: v.detach().clone() for k, v in trainer.model.rm_heads.state_dict().items()}
    summary = trainer.train()
    losses = [r["loss"] for r in records(trainer.output_dir, "train")]
    assert summary["step"] == 2 and all(map(torch.isfinite, torch.tensor(losses)))
    after = trainer.model.rm_heads.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from .conftest import TINY_YAML

    overrides = ["data.train.num_rows=48", "data.validation=null", "max_steps=18", "per_device_batch_size=4",
                 "gradient_accumulation_steps=2", "save_every=3", "log_every=1", "save_total_limit=null"]
    command = [sys.executable, "-m", "editrl.cli", "reward", "train", "--config", str(TINY_YAML),
               "--set", f"output_dir={tmp_path / 'killed'}"] + [a for o in overrides for a in ("--set", o)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not (checkpoints / "step-000006" / "data_state.json").exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = list_checkpoints(tmp_path / "killed")
    assert done and int(done[-1].name.split("-")[1]) < 18  # really killed mid-way
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["step"] == 18 and summary["samples_seen"] == 18 * 8

    straight = RewardTrainer(load_config(TINY_YAML, [f"output_dir={tmp_path / 'straight'}", *overrides]))
    straight.train()
    a = load_file(str(tmp_path / "killed" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "straight" / "final" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    # the train log of the killed run may repeat steps after its last checkpoint (they were redone),
    # but every step's loss equals the uninterrupted run's
    killed = {r["step"]: r["loss"] for r in records(tmp_path / "killed", "train")}
    plain = {r["step"]: r["loss"] for r in records(tmp_path / "straight", "train")}
    assert sorted(killed) == list(range(1, 19)) and all(abs(killed[s] - plain[s]) < 1e-5 for s in plain)


def test_run_writes_its_config_and_logs_through_the_trackers(make_config, monkeypatch):
    import yaml
    from accelerate import Accelerator

    import editrl

    logged, configs = [], []
    monkeypatch.setattr(Accelerator, "log", lambda self, values, step=None, **kw: logged.append((step, values)))
    monkeypatch.setattr(Accelerator, "init_trackers", lambda self, name, config=None, **kw: configs.append((name, config)))
    config = make_config("max_steps=2", "save_every=2", "eval_every=2")
    trainer = RewardTrainer(config)
    trainer.train()
    saved = yaml.safe_load((trainer.output_dir / "config.yaml").read_text())
    assert saved["editrl_version"] == editrl.__version__ and saved["max_steps"] == 2
    assert saved["data"]["train"]["num_rows"] == 48 and saved["report_to"] == "auto"
    assert configs == [("editrl-reward", configs[0][1])] and configs[0][1]["data.train.num_rows"] == 48
    steps = {step for step, _ in logged}
    assert steps == {1, 2} and any("validation/loss" in values for _, values in logged)
    assert any("train/loss" in values for _, values in logged)


def test_cli_train_hides_accelerate_checkpoint_chatter_unless_verbose(tmp_path, caplog):
    """accelerate logs every file of every checkpoint at INFO; ``editrl reward train`` shows those lines only with -v."""
    import logging

    from editrl.cli import main

    from .conftest import TINY_YAML

    caplog.set_level(logging.INFO)
    overrides = ["data.train.num_rows=16", "data.validation.num_rows=8", "max_steps=2", "per_device_batch_size=4",
                 "save_every=1", "eval_every=2"]

    runs = iter(range(3))

    def run(*flags):
        caplog.clear()
        argv = ["reward", "train", *flags, "--config", str(TINY_YAML), "--set", f"output_dir={tmp_path / str(next(runs))}"]
        assert main(argv + [arg for o in overrides for arg in ("--set", o)]) == 0
        return {r.name for r in caplog.records if r.levelno == logging.INFO}

    quiet = run()
    assert "editrl.reward.train" in quiet and "accelerate.checkpointing" not in quiet
    assert "accelerate.checkpointing" in run("-v")  # the lines exist; only their level hides them
    assert "accelerate.checkpointing" not in run()  # -v of an earlier run does not stick
