"""Runs that document themselves: config.yaml, resume checks, trackers, sample grids, curves, lora/."""

import json

import pytest
import torch
import yaml
from PIL import Image
from toys import Brightness, small_config

from editrl.errors import EditRLError
from editrl.rl import GRPOConfig, GRPOTrainer, NFTConfig, NFTTrainer
from editrl.rl.lora import lora_state


def _editor():
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.tiny import tiny_flux_kontext

    return FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=4)


def _trainer(editor, prompts, tmp_path, cls=GRPOConfig, trainer_cls=GRPOTrainer, accelerator=None, **overrides):
    cfg = small_config(cls, tmp_path, **overrides)
    return trainer_cls(cfg, editor=editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts,
                       accelerator=accelerator)


def test_config_yaml_grids_curves_and_lora_are_written(tiny_editor, prompts, tmp_path):
    import editrl

    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=2, eval_every=1, save_every=1,
                       judge="toys:Darkness")
    trainer.train()
    run = tmp_path / "run"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["editrl_version"] == editrl.__version__ and saved["learning_rate"] == trainer.config.learning_rate
    assert saved["rewards"] == {"toys:Brightness": 1.0}
    for step in (0, 1, 2):  # one grid per evaluation: 2 prompts, 2 tiles of 128 px side by side
        grid = Image.open(run / "samples" / f"step-{step:06d}.png")
        assert grid.size == (256, 128 + 14)
    curves = Image.open(run / "curves.png")
    assert curves.size == (640, 400) and len(set(curves.getdata())) > 3  # drawn lines, not a blank canvas
    assert (run / "lora" / "pytorch_lora_weights.safetensors").is_file()


def test_lora_dir_follows_every_checkpoint(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=3, save_every=1)
    trainer.iteration(0)
    trainer.step = 1
    trainer.save_checkpoint()  # a run killed after its first checkpoint still leaves a loadable lora/
    lora = tmp_path / "run" / "lora" / "pytorch_lora_weights.safetensors"
    assert lora.is_file()
    assert lora.read_bytes() == (tmp_path / "run" / "checkpoints" / "step-000001" / lora.name).read_bytes()
    assert not (tmp_path / "run" / "lora" / "trainer_state.pt").exists()


def test_resume_with_a_changed_config_names_the_keys(prompts, tmp_path):
    _trainer(_editor(), prompts, tmp_path, num_iterations=1).train()
    changed = _trainer(_editor(), prompts, tmp_path, num_iterations=2, learning_rate=1e-3, kl_beta=0.5)
    with pytest.raises(EditRLError) as err:
        changed.train(resume=True)
    message = str(err.value)
    assert "\n" not in message and "kl_beta, learning_rate" in message and "num_iterations" not in message.split(";")[0]
    longer = _trainer(_editor(), prompts, tmp_path, num_iterations=2, eval_every=1)  # iterations/logging: fine
    longer.train(resume=True)
    assert [json.loads(line)["step"] for line in longer.log_path.read_text().splitlines()] == [1, 2]


def test_resume_from_a_checkpoint_path(prompts, tmp_path):
    first = _trainer(_editor(), prompts, tmp_path, cls=NFTConfig, trainer_cls=NFTTrainer, num_iterations=1)
    first.train()
    other = _trainer(_editor(), prompts, tmp_path, cls=NFTConfig, trainer_cls=NFTTrainer, num_iterations=1,
                     output_dir=str(tmp_path / "other"))
    other.train(resume=str(tmp_path / "run" / "checkpoints" / "step-000001"))
    assert other.step == 1 and all(torch.equal(v, lora_state(first.transformer)[k]) for k, v in lora_state(other.transformer).items())
    with pytest.raises(EditRLError, match="--resume .*no trainer_state.pt"):
        other.train(resume=str(tmp_path / "nowhere"))


def test_metrics_and_images_go_to_the_trackers(tiny_editor, prompts, tmp_path):
    from accelerate import Accelerator
    from accelerate.tracking import GeneralTracker

    class Recording(GeneralTracker):
        name, requires_logging_directory = "recording", False

        def __init__(self):
            super().__init__()
            self.logged, self.images, self.config = [], [], None

        @property
        def tracker(self):
            return self

        def store_init_configuration(self, values):
            self.config = values

        def log(self, values, step=None, **kwargs):
            self.logged.append((step, values))

        def log_images(self, values, step=None, **kwargs):
            self.images.append((step, sorted(values)))

    tracker = Recording()
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=2, eval_every=2, judge="toys:Darkness",
                       accelerator=Accelerator(cpu=True, log_with=[tracker]))
    trainer.train()
    assert tracker.config["learning_rate"] == trainer.config.learning_rate and "editrl_version" in tracker.config
    steps = [s for s, _ in tracker.logged]
    assert steps == [0, 1, 2] and "reward_mean" in tracker.logged[1][1] and "judge_score" in tracker.logged[2][1]
    assert (0, ["eval_samples"]) in tracker.images and (2, ["curves"]) in tracker.images


def test_world_evaluation_measures_exact_edits_and_lost_objects(tiny_editor, tmp_path, monkeypatch):
    from editrl.sampler.editors.base import SampleResult
    from editrl.world import make_examples, render

    cfg = small_config(GRPOConfig, tmp_path, eval_data="world", eval_prompts=4, train_data="world", world_train_examples=4,
                       judge="oracle")
    trainer = GRPOTrainer(cfg, editor=tiny_editor, reward=Brightness())
    examples = make_examples(4, seed=cfg.seed, split="test", size=64)
    assert [p[1] for p in trainer.eval_prompts] == [e.instruction for e in examples]
    perfect = [render(e.target_scene, 64) for e in examples]
    blank = [Image.new("RGB", (64, 64), (128, 128, 128)) for _ in examples]
    for images, exact, lost in ((perfect, 1.0, 0.0), (blank, 0.0, sum(bool(e.target_scene.objects) for e in examples) / 4)):
        monkeypatch.setattr(tiny_editor, "sample", lambda *a, images=images, **k: SampleResult(images, torch.zeros(1), 0))
        out = trainer.evaluate()
        assert out["exact_edit"] == exact and out["lost_object"] == lost


def test_report_to_is_validated(tmp_path):
    with pytest.raises(EditRLError, match="report_to"):
        small_config(GRPOConfig, tmp_path, report_to="mlflow").validate()


@pytest.mark.parametrize("algorithm", ["grpo", "dpo", "nft"])
def test_help_lists_every_config_key_with_default_and_help(algorithm, capsys):
    import dataclasses

    from editrl.cli import main
    from editrl.commands.rl import CONFIGS

    with pytest.raises(SystemExit) as exit_:
        main([algorithm, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    cls = CONFIGS[algorithm]
    for f in dataclasses.fields(cls):
        assert f"\n  {f.name} (default: " in text, f.name
        assert f.metadata["help"] in text
    assert "  learning_rate (default: 0.0003)" in text


def test_unknown_key_suggests_the_closest(capsys):
    from editrl.cli import main

    assert main(["nft", "--set", "old_decay_rat=0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown config key old_decay_rat (did you mean old_decay_rate?)" in err[0]



def test_a_new_run_in_a_folder_holding_one_is_refused(prompts, tmp_path):
    """Starting over in output_dir would overwrite the first run's checkpoints and mix two runs in one log."""
    _trainer(_editor(), prompts, tmp_path, num_iterations=1).train()
    log = (tmp_path / "run" / "log.jsonl").read_text()
    with pytest.raises(EditRLError, match=r"already holds a run \(log.jsonl\): pass --resume to continue it"):
        _trainer(_editor(), prompts, tmp_path, num_iterations=1).train()
    assert (tmp_path / "run" / "log.jsonl").read_text() == log
