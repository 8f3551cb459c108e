"""The trainer shell every trainer uses (editrl.runs): atomic checkpoint folders, keep-N, the resume check, the log."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from editrl.config import config_field
from editrl.errors import EditRLError
from editrl.runs import STATE_FILE, JsonlLog, checkpoint_dir, list_checkpoints, load_checkpoint, save_checkpoint


@dataclasses.dataclass
class Settings:
    learning_rate: float = config_field(1e-3, "what is learned")
    steps: int = config_field(4, "how long")
    sizes: tuple = config_field((1, 2), "a tuple, stored as a list")


def _save(run, step, **settings):
    return save_checkpoint(run, step, {"step": step, "w": torch.full((2,), float(step))}, Settings(**settings), keep=2)


def test_keep_n_deletes_all_but_the_newest(tmp_path):
    for step in (1, 2, 3, 4):
        _save(tmp_path, step)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000003", "step-000004"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000003", "step-000004"]
    save_checkpoint(tmp_path, 5, {"step": 5}, Settings(), keep=0)  # 0 keeps every checkpoint
    assert len(list_checkpoints(tmp_path)) == 3


def test_a_checkpoint_killed_while_written_is_never_seen(tmp_path):
    def killed(folder):
        (folder / "lora.bin").write_text("half")
        raise RuntimeError("killed")

    _save(tmp_path, 1)
    with pytest.raises(RuntimeError, match="killed"):
        save_checkpoint(tmp_path, 2, {"step": 2}, Settings(), keep=2, write=killed)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000001"]  # no half step-000002
    # a process killed outright leaves its temporary folder: not a checkpoint, and cleared by the next save
    leftover = checkpoint_dir(tmp_path, 2).with_name(".tmp-step-000002")
    leftover.mkdir()
    (leftover / STATE_FILE).write_bytes(b"half")
    state, folder = load_checkpoint(tmp_path, Settings(), ())
    assert folder.name == "step-000001" and torch.equal(state["w"], torch.ones(2))
    _save(tmp_path, 3)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000001", "step-000003"]


def test_resume_checks_the_config_it_was_written_with(tmp_path):
    assert load_checkpoint(tmp_path, Settings(), ()) is None  # nothing to resume
    _save(tmp_path, 1, sizes=(1, 2))
    state, _ = load_checkpoint(tmp_path, Settings(steps=9), may_change=("steps",))  # tuples compare as stored lists
    assert state["step"] == 1
    with pytest.raises(EditRLError) as err:
        load_checkpoint(tmp_path, Settings(learning_rate=2e-3, steps=9), may_change=("steps",))
    message = str(err.value)
    assert "\n" not in message and "step-000001: written with another config (it differs in learning_rate)" in message
    with pytest.raises(EditRLError, match="sizes"):
        load_checkpoint(tmp_path, Settings(sizes=(1, 3)), ())
    with pytest.raises(EditRLError, match="--resume .*no trainer_state.pt"):
        load_checkpoint(tmp_path, Settings(), (), checkpoint=tmp_path / "nowhere")


@dataclasses.dataclass
class LaterSettings(Settings):
    """Settings after a release added ``every``: runs written before it behaved as every=1."""

    KEYS_ADDED = {"every": 1}
    every: int = config_field(8, "a key added later, with a new default")


def test_a_checkpoint_written_before_a_key_existed_resumes_only_with_the_value_it_ran_with(tmp_path):
    _save(tmp_path, 1)  # written by Settings, without `every`
    state, _ = load_checkpoint(tmp_path, LaterSettings(every=1), ())
    assert state["step"] == 1
    with pytest.raises(EditRLError, match=r"differs in every\)"):  # the new default would change the run silently
        load_checkpoint(tmp_path, LaterSettings(), ())
    from editrl.rl.config import GRPOConfig

    # RL checkpoints from before these keys resume with the value they ran with
    assert GRPOConfig.KEYS_ADDED == {"ema_update_every": 1, "optimizer": "adamw", "max_group_mean": None}


def test_the_log_appends_and_a_resume_drops_what_follows_the_checkpoint(tmp_path):
    log = JsonlLog(tmp_path / "run" / "log.jsonl")
    for step in (1, 2, 3):
        log.write({"step": step, "loss": 1.0 / step})
    log.truncate(2)
    assert log.records() == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}]
