"""Every config dataclass follows one convention: it subclasses ``editrl.config.Config`` (checks in
``validate``, run on construction) and every field is a ``config_field`` with non-empty help."""

from __future__ import annotations

import dataclasses

import pytest

from editrl.config import Config, config_field
from editrl.errors import EditRLError
from editrl.filter import FilterConfig
from editrl.reward.data import DataSource
from editrl.reward.losses import LossConfig
from editrl.reward.model import EditRewardConfig
from editrl.reward.serve_config import ServeConfig
from editrl.reward.train_config import DataSection, LoraSection, ModelSection, RewardTrainingConfig
from editrl.rl.config import DPOConfig, GroupConfig, GRPOConfig, NFTConfig, RLConfig
from editrl.sampler.adaptive import AdaptiveConfig
from editrl.sampler.search import HalvingConfig
from editrl.world.oracle import OracleConfig
from editrl.world.pretrain import PretrainConfig
from editrl.world.train_editor import EditorTrainingConfig

CONFIGS = [
    RLConfig, GroupConfig, GRPOConfig, DPOConfig, NFTConfig, ServeConfig, EditRewardConfig, LossConfig, DataSource,
    LoraSection, ModelSection, DataSection, RewardTrainingConfig, FilterConfig, HalvingConfig, AdaptiveConfig,
    OracleConfig,
    PretrainConfig, EditorTrainingConfig,
]


def all_subclasses(cls: type) -> set[type]:
    return {sub for child in cls.__subclasses__() for sub in {child, *all_subclasses(child)}}


def fields_without_help(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if not str(f.metadata.get("help") or "").strip()]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda cls: cls.__name__)
def test_every_field_has_help(cls):
    assert issubclass(cls, Config) and dataclasses.is_dataclass(cls)
    assert fields_without_help(cls) == []


def test_the_list_names_every_config():
    """A new ``Config`` subclass (outside the tests) must join ``CONFIGS``, so its help is checked too."""
    found = {cls for cls in all_subclasses(Config) if cls.__module__.startswith("editrl.")}
    assert found == set(CONFIGS)


def test_a_field_without_help_is_caught():
    @dataclasses.dataclass
    class Broken(Config):
        documented: int = config_field(1, "A key with help.")
        undocumented: int = 2
        blank: int = config_field(3, "  ")

    assert fields_without_help(Broken) == ["undocumented", "blank"]


def test_validate_runs_on_construction_and_names_the_key():
    with pytest.raises(EditRLError, match=r"^config key batch_size: expected an integer >= 1, got 0$"):
        FilterConfig(data="d", out="o", batch_size=0)
    with pytest.raises(EditRLError, match=r"^keep: expected a fraction in \(0, 1\), got 1.0$"):
        HalvingConfig(keep=1.0)
    with pytest.raises(EditRLError, match=r"^min_survivors: expected a count >= 1, got 0$"):
        HalvingConfig(min_survivors=0)
    with pytest.raises(EditRLError, match="oracle fusion"):
        OracleConfig(fusion="max")


def test_model_section_extends_edit_reward_config():
    """The reward-training model section derives the model keys instead of re-declaring them; its
    ``reward_config()`` is exactly the ``EditRewardConfig`` the trainer builds."""
    section = ModelSection(tiny={}, fusion="min", head_dropout=0.1, head_hidden_sizes=[8, 4])
    reward = section.reward_config()
    assert type(reward) is EditRewardConfig
    assert reward == EditRewardConfig(base_model="tiny", fusion="min", head_dropout=0.1, head_hidden_sizes=(8, 4))
    with pytest.raises(EditRLError, match=r"EditRewardConfig\.fusion='max'"):
        ModelSection(tiny={}, fusion="max")
