"""Runs that document themselves: config.yaml, resume checks, trackers, sample grids, curves, lora/."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from toys import Brightness, small_config

from editrl.errors import EditRLError
from editrl.rl import GRPOConfig, GRPOTrainer, NFTConfig, NFTTrainer
from editrl.rl.lora import lora_state
from editrl.rl.plots import GRID_PROMPTS, GRID_TILE, curves_figure, eval_grid, render
from editrl.sampler.contact_sheet import PAD, cell_size


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
    for step in (0, 1, 2):  # one grid per evaluation: a row per prompt, its source, instruction and sample
        grid = Image.open(run / "samples" / f"step-{step:06d}.png")
        assert grid.size == (3 * cell_size(GRID_TILE)[0], 2 * cell_size(GRID_TILE)[1])
    curves = Image.open(run / "curves.png")
    assert curves.width == 720 and len(set(curves.getdata())) > 3  # drawn lines, not a blank canvas
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


def test_a_run_ends_with_an_evaluation_in_its_log_and_its_record(tiny_editor, prompts, tmp_path):
    """3 iterations, eval_every 2: evaluations at 0, 2 and, the run's result, 3; catches a run that ends without one."""
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=3, eval_every=2, judge="toys:Darkness")
    record = trainer.train()
    log = [json.loads(line) for line in trainer.log_path.read_text().splitlines()]
    assert [r["step"] for r in log if "judge_score" in r] == [0, 2, 3]
    assert record["step"] == 3 and record == log[-1] and {"eval_reward", "judge_score"} <= set(record)
    # the last iteration evaluated already (4 = 2 x 2): no second evaluation of the same weights
    again = _trainer(_editor(), prompts, tmp_path, num_iterations=4, eval_every=2, output_dir=str(tmp_path / "b"))
    again.train()
    assert sorted(p.name for p in (tmp_path / "b" / "samples").iterdir()) == [f"step-{s:06d}.png" for s in (2, 4)]


def test_evaluation_says_what_it_does_and_counts_prompts_on_a_bar(tiny_editor, prompts, tmp_path, monkeypatch, caplog):
    import logging

    import editrl.rl.trainer as trainer_module

    bars = []

    class Bar:  # records what the evaluation's bar is told
        def __init__(self, total=None, desc="", disable=None, **kwargs):
            self.total, self.desc, self.disable, self.n = total, desc, disable, 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            self.n += n

        def set_postfix_str(self, text):
            pass

    monkeypatch.setattr(trainer_module, "tqdm", Bar)
    trainer = _trainer(tiny_editor, prompts * 3, tmp_path, judge="toys:Darkness", eval_prompts=5, batch_size=2)
    with caplog.at_level(logging.INFO, logger="editrl.rl.trainer"):
        out = trainer.evaluate()
    assert "step 0: evaluating 5 held-out prompts with the training reward (Brightness) and the judge toys:Darkness" in caplog.text
    assert f"judge_score {out['judge_score']:.4g}" in caplog.text  # the result, also in a log file without a bar
    (bar,) = bars
    assert bar.total == 5 and bar.n == 5 and "evaluation" in bar.desc


def test_progress_bars_are_off_on_other_processes_and_under_quiet(monkeypatch):
    import logging

    from editrl.rl.trainer import bar_disabled

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(root, "level", logging.WARNING)  # editrl -q
    assert bar_disabled(True) is True
    monkeypatch.setattr(root, "level", logging.INFO)  # the CLI's default: tqdm decides (off when not a terminal)
    assert bar_disabled(True) is None and bar_disabled(False) is True


def _solid(colour, size=64):
    return Image.new("RGB", (size, size), colour)


def test_eval_grid_rows_are_prompts_with_source_instruction_and_marked_sample():
    from editrl.rl.plots import EXACT, LOST

    n = GRID_PROMPTS + 2  # more prompts than a grid shows
    sources = [_solid((10 * i, 200, 40)) for i in range(n)]
    edits = [_solid((200, 10 * i, 90)) for i in range(n)]
    exact = [1.0 if i == 0 else 0.0 for i in range(n)]
    lost = [1.0 if i == 1 else 0.0 for i in range(n)]
    grid = eval_grid(sources, [f"make object {i} red and move it to the top left corner" for i in range(n)], edits, [0.5] * n, [0.25] * n,
                     {"exact_edit": exact, "lost_object": lost})
    w, h = cell_size(GRID_TILE)
    assert grid.size == (3 * w, GRID_PROMPTS * h)  # 8 rows of source | instruction | sample
    for row in range(GRID_PROMPTS):
        y = row * h + PAD + GRID_TILE // 2
        assert grid.getpixel((PAD + GRID_TILE - 2, y)) == sources[row].getpixel((0, 0))  # source enlarged 2x
        assert grid.getpixel((2 * w + PAD + GRID_TILE - 2, y)) == edits[row].getpixel((0, 0))
        text = np.asarray(grid.crop((w, row * h, 2 * w, (row + 1) * h)), dtype=int)
        assert (text.max(-1) < 100).sum() > 50  # dark text in the instruction cell, and no image there
        assert not (np.abs(text - sources[row].getpixel((0, 0))).sum(-1) == 0).any()

    def marked(row, mark):  # a line in the mark's colour under the sample
        below = np.asarray(grid.crop((2 * w, row * h + GRID_TILE + 2 * PAD, 3 * w, (row + 1) * h)), dtype=int)
        r, g, b = below[..., 0], below[..., 1], below[..., 2]
        return bool(((g - r > 60) & (g - b > 40)).any() if mark == EXACT else ((r - g > 80) & (r - b > 80)).any())

    assert marked(0, EXACT) and not marked(0, LOST) and marked(1, LOST) and not marked(1, EXACT)
    assert not marked(2, EXACT) and not marked(2, LOST)


def test_curves_figure_labels_every_axis_and_series():
    records = [{"step": 0, "eval_reward": 0.2, "judge_score": 0.4, "exact_edit": 0.1, "lost_object": 0.3}]
    records += [{"step": s, "reward_mean": 0.1 * s, "images": 16 * s} for s in range(1, 11)]
    records[-1].update(eval_reward=0.5, judge_score=0.35, exact_edit=0.2, lost_object=0.4)
    figure = curves_figure(records, "GRPOTrainer run", reward="world-describe", judge="oracle")
    assert figure.xlabel == "iteration (images sampled)" and figure.title
    assert [label for _, label in figure.xticks] == ["0 (0)", "2 (32)", "4 (64)", "6 (96)", "8 (128)", "10 (160)"]
    ylabels = [p.ylabel for p in figure.panels]
    assert ylabels == ["training reward (world-describe)", "held-out judge score (oracle)", "share of held-out edits (0-1)"]
    legends = [[s.label for s in p.series] for p in figure.panels]
    assert legends == [["rollouts of the iteration", "held-out prompts"], ["held-out prompts"], ["exact edits", "lost an object"]]
    assert figure.panels[2].ylim == (0.0, 1.0)
    lo, hi = figure.panels[0].ylim  # the reward scale holds every reward point
    assert lo < 0.1 and hi > 1.0 and figure.panels[0].yticks() == [lo, (lo + hi) / 2, hi]
    image = render(figure)
    assert image.size[0] == 720 and image.size[1] > 3 * 170
    # a run with no judge draws only the reward panel
    # a judge that barely moves keeps a scale of at least 2% of its value: distinct tick labels, no false cliff
    flat = curves_figure([{"step": 0, "judge_score": 0.4383}, {"step": 2, "judge_score": 0.43829}], "t", "r", "j")
    ticks = [f"{y:.3g}" for y in flat.panels[0].yticks()]
    assert len(set(ticks)) == 3 and flat.panels[0].ylim[1] - flat.panels[0].ylim[0] == pytest.approx(0.02)
    plain = [{"step": s, "reward_mean": 0.1 * s} for s in (1, 2)]
    figure = curves_figure(plain, "t", "r", None)
    assert [p.ylabel for p in figure.panels] == ["training reward (r)"] and figure.xlabel == "iteration"
