"""Tiny training configs for the reward training tests (CPU, 64x64 synthetic pairs)."""

from pathlib import Path

import pytest

from editrl.reward.train_config import load_config

REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "configs" / "reward" / "tiny.yaml"


def tiny_config(output_dir, *overrides):
    """configs/reward/tiny.yaml scaled down: few rows, few steps, writing under ``output_dir``."""
    return load_config(TINY_YAML, [
        f"output_dir={output_dir}", "data.train.num_rows=48", "data.validation.num_rows=16", "max_steps=4",
        "per_device_batch_size=4", "gradient_accumulation_steps=2", "save_every=2", "eval_every=2",
        "log_every=1", "learning_rate=3e-3", *overrides,
    ])


@pytest.fixture
def make_config(tmp_path):
    return lambda *overrides, name="run": tiny_config(tmp_path / name, *overrides)
