"""Every shipped config parses and validates; tiny configs build their model; bad keys are named."""


import pytest
import yaml

from editrl.errors import EditRLError
from editrl.reward.train import build_reward_model
from editrl.reward.train_config import RewardTrainingConfig, load_config

from .conftest import REPO

REWARD_CONFIGS = sorted((REPO / "configs" / "reward").glob("*.yaml"))
ACCELERATE_CONFIGS = sorted((REPO / "configs" / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("path", REWARD_CONFIGS, ids=lambda p: p.name)
def test_reward_config_builds(path):
    config = load_config(path)
    assert isinstance(config, RewardTrainingConfig)
    if config.model.tiny is not None:
        model = build_reward_model(config.model)
        assert model.config.fusion == config.model.fusion
        assert model.inputs.reward_token_id == model.processor.tokenizer.convert_tokens_to_ids("<|Reward|>")
    else:
        assert config.model.base_model and config.data.train.format == "editreward"


def test_paper_recipes_have_the_paper_hyperparameters():
    names = {p.name for p in REWARD_CONFIGS}
    assert {"tiny.yaml", "qwen2.5-vl-7b.yaml", "mimo-vl-7b.yaml", "qwen2.5-vl-7b-lora.yaml"} <= names
    for name, base in (("qwen2.5-vl-7b.yaml", "Qwen/Qwen2.5-VL-7B-Instruct"), ("mimo-vl-7b.yaml", "XiaomiMiMo/MiMo-VL-7B-SFT-2508")):
        c = load_config(REPO / "configs" / "reward" / name)
        assert c.model.base_model == base and c.model.lora is None and c.model.gradient_checkpointing
        assert (c.learning_rate, c.warmup_ratio, c.per_device_batch_size, c.gradient_accumulation_steps) == (2e-6, 0.05, 2, 4)
        assert (c.lr_scheduler, c.mixed_precision, c.loss.type, c.model.head_type, c.model.fusion, c.data.ties) == (
            "constant_with_warmup", "bf16", "uncertainty", "multi", "mean", "disentangle")
        assert c.model.min_pixels == c.model.max_pixels == 256 * 28 * 28
    assert load_config(REPO / "configs" / "reward" / "qwen2.5-vl-7b-lora.yaml").model.lora.r == 64


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_configs(path):
    data = yaml.safe_load(path.read_text())
    # bf16 autocast for the reward model's fp32 masters; fsdp_rl.yaml (RL) keeps the editor's own dtype instead
    precision = "no" if path.name == "fsdp_rl.yaml" else "bf16"
    assert data["distributed_type"] in ("MULTI_GPU", "DEEPSPEED", "FSDP") and data["mixed_precision"] == precision
    if data["distributed_type"] == "DEEPSPEED":  # must equal the 7B recipe's accumulation (checked at start)
        assert data["deepspeed_config"]["gradient_accumulation_steps"] == 4
        assert data["deepspeed_config"]["zero_stage"] in (2, 3)
    names = {p.name for p in ACCELERATE_CONFIGS}
    assert {"zero2.yaml", "zero3_offload.yaml", "fsdp.yaml", "multi_gpu.yaml"} <= names


def test_unknown_keys_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {tiny: {}}\ndata:\n  train: {format: synthetic, pth: x}\n")
    with pytest.raises(EditRLError, match=r"unknown config key data\.train\.pth"):
        load_config(bad)
    with pytest.raises(EditRLError, match="unknown config key learning_rat"):
        load_config(REPO / "configs" / "reward" / "tiny.yaml", ["learning_rat=1"])
    with pytest.raises(EditRLError, match="exactly one of model.base_model"):
        load_config(REPO / "configs" / "reward" / "tiny.yaml", ["model.base_model=Qwen/Qwen2.5-VL-7B-Instruct"])
    with pytest.raises(EditRLError, match="loss.type"):
        load_config(None, ["loss.type=hinge"])
    with pytest.raises(EditRLError, match="key=value"):
        load_config(None, ["learning_rate"])


def test_overrides_are_typed():
    config = load_config(REPO / "configs" / "reward" / "tiny.yaml",
                         ["learning_rate=1e-4", "model.fusion=min", "data.train.num_rows=7", "model.lora={r: 2}"])
    assert config.learning_rate == 1e-4 and isinstance(config.learning_rate, float)
    assert config.model.fusion == "min" and config.data.train.num_rows == 7 and config.model.lora.r == 2
    assert config.model.lora.alpha == 128  # unspecified keys keep their defaults


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    from editrl.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 1e-5\nwarmup: 3\n")
    assert main(["reward", "train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown config key warmup" in err[0]


def test_cli_trains_and_prints_a_summary(tmp_path, capsys):
    from editrl.cli import main

    code = main(["reward", "train", "--config", str(REPO / "configs" / "reward" / "tiny.yaml"),
                 "--set", f"output_dir={tmp_path}", "--set", "max_steps=2", "--set", "data.train.num_rows=16",
                 "--set", "data.validation=null", "--set", "per_device_batch_size=4"])
    assert code == 0
    import json

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and summary["samples_seen"] == 8 and summary["validation"] is None
    assert (tmp_path / "final" / "model.safetensors").is_file() and (tmp_path / "metrics.jsonl").is_file()
