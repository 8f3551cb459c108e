import dataclasses
import re
from pathlib import Path

import pytest
import torch

from editrl.errors import EditRLError
from editrl.rl import DPOConfig, GRPOConfig, NFTConfig, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL = [(p, GRPOConfig) for p in sorted((CONFIGS / "grpo").glob("*.yaml"))] + [
    (p, DPOConfig) for p in sorted((CONFIGS / "dpo").glob("*.yaml"))
] + [(p, NFTConfig) for p in sorted((CONFIGS / "nft").glob("*.yaml"))]


def test_configs_exist_for_every_model():
    names = {(p.parent.name, p.stem) for p, _ in ALL}
    for algo in ("grpo", "dpo", "nft"):
        for model in ("world", "flux-kontext", "qwen-image-edit"):
            assert (algo, model) in names


@pytest.mark.parametrize("path,cls", ALL, ids=[f"{p.parent.name}/{p.name}" for p, _ in ALL])
def test_every_config_builds_and_validates(path, cls):
    config = load_config(cls, path)
    assert isinstance(config, cls)
    assert config.editor == path.stem
    if path.stem != "world":
        assert config.lora_rank == 64 and config.judge and config.judge not in config.rewards


def _linear_suffixes(module):
    return {name for name, m in module.named_modules() if isinstance(m, torch.nn.Linear)}


@pytest.mark.parametrize("model", ["flux-kontext", "qwen-image-edit"])
def test_public_recipe_lora_targets_exist_in_the_real_classes(model):
    from editrl.tiny import tiny_flux_kontext, tiny_qwen_image_edit

    transformer = (tiny_flux_kontext() if model == "flux-kontext" else tiny_qwen_image_edit()).transformer
    names = _linear_suffixes(transformer)
    for cls in (GRPOConfig, DPOConfig, NFTConfig):
        targets = load_config(cls, CONFIGS / cls.__name__[:-6].lower() / f"{model}.yaml").lora_target_modules
        for target in targets:
            assert any(n == target or n.endswith("." + target) for n in names), target
    from editrl.rl.lora import add_lora

    params = add_lora(transformer, 4, 8, targets)
    wrapped = {re.sub(r"\.lora_[AB]\.default\.weight$", "", n) for n, _ in transformer.named_parameters() if "lora_" in n}
    assert len(params) == 2 * len(wrapped) and all(p.requires_grad for p in params)


def test_unknown_keys_and_bad_values_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 0.001\nlerning_rate: 0.1\n")
    with pytest.raises(EditRLError, match="lerning_rate"):
        load_config(GRPOConfig, bad)
    with pytest.raises(EditRLError, match="kl_betta"):
        load_config(GRPOConfig, None, ["kl_betta=0"])
    with pytest.raises(EditRLError, match="group_size"):
        load_config(GRPOConfig, None, ["group_size=many"])
    with pytest.raises(EditRLError, match="group_size"):
        load_config(GRPOConfig, None, ["group_size=1"])
    with pytest.raises(EditRLError, match="advantage_mode"):
        load_config(GRPOConfig, None, ["advantage_mode=token"])
    with pytest.raises(EditRLError, match="beta"):
        load_config(GRPOConfig, None, ["beta=1"])  # a DPO key is unknown to GRPO
    with pytest.raises(EditRLError, match="no such file"):
        load_config(GRPOConfig, tmp_path / "missing.yaml")
    with pytest.raises(EditRLError, match="key=value"):
        load_config(GRPOConfig, None, ["kl_beta"])


def test_overrides_are_parsed_as_yaml_and_win_over_the_file():
    config = load_config(
        GRPOConfig, CONFIGS / "grpo" / "world.yaml",
        ["learning_rate=1e-4", "rewards={world: 1.0, oracle: 0.5}", "judge=null", "sde_window_size=2", "kl_beta=0"],
    )
    assert config.learning_rate == 1e-4 and isinstance(config.kl_beta, float) and config.kl_beta == 0.0
    assert config.rewards == {"world": 1.0, "oracle": 0.5} and config.judge is None and config.sde_window_size == 2


@pytest.mark.parametrize("cls", [GRPOConfig, DPOConfig, NFTConfig])
def test_every_key_is_documented(cls):
    for f in dataclasses.fields(cls):
        assert len(f.metadata.get("help", "")) > 10, f.name
