"""`editrl best-of-n` end to end with a tiny saved editor, the oracle and a toy reward."""

from __future__ import annotations

import hashlib
import json
import sys
import types

import numpy as np
import pytest
from PIL import Image

from editrl.cli import main
from editrl.world.editor import WORLD_EDITOR_DIR


def _files(out):
    return sorted(p.name for p in out.iterdir())


def test_world_example_with_oracle(editor_folder, tmp_path, capsys):
    from editrl.world import Oracle
    from editrl.world.examples import builtin_example

    out = tmp_path / "run"
    code = main(["best-of-n", "--editor", str(editor_folder), "--reward", "oracle", "--n", "3", "--seed", "4",
                 "--out", str(out), "--device", "cpu"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    example = builtin_example()
    assert summary["instruction"] == example.instruction and summary["nfe"] == 3 * 2 and summary["reward_calls"] == 3
    assert _files(out) == ["best.png", "candidate_00_seed4.png", "candidate_01_seed5.png", "candidate_02_seed6.png",
                           "contact_sheet.png", "scores.json"]
    scores = json.loads((out / "scores.json").read_text())
    files = [c["file"] for c in scores["candidates"]]
    oracle = Oracle().score([example.source] * 3, [example.instruction] * 3, [Image.open(out / f) for f in files])
    assert [c["score"] for c in scores["candidates"]] == pytest.approx(oracle.score.tolist(), abs=1e-6)
    assert [c["rank"] for c in scores["candidates"]] == [1, 2, 3] and summary["best_seed"] == scores["candidates"][0]["seed"]
    assert scores["run"]["source"] == {
        "path": None, "name": "built-in world example", "size": [64, 64], "sha256_of": "RGB pixels",
        "sha256": hashlib.sha256(example.source.convert("RGB").tobytes()).hexdigest()}
    assert scores["run"]["device"] == "cpu" and scores["run"]["dtype"] == "float32"
    assert scores["run"]["reward_device"] is None and scores["run"]["reward_dtype"] is None  # the oracle has no weights


def test_own_image_halving_and_custom_reward(editor_folder, tmp_path, capsys, monkeypatch, make_image, toy_reward):
    module = types.ModuleType("editrl_test_rewards")
    module.ToyReward = type(toy_reward)
    monkeypatch.setitem(sys.modules, "editrl_test_rewards", module)
    image = tmp_path / "grey.png"
    make_image(5, size=50, mode="L").save(image)
    out = tmp_path / "run"
    code = main(["best-of-n", "--image", str(image), "--instruction", "make it brighter", "--editor", str(editor_folder),
                 "--reward", "editrl_test_rewards:ToyReward", "--n", "4", "--search", "halving", "--steps", "4",
                 "--select", "lcb", "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["search"] == "halving" and summary["nfe"] < 4 * 4
    scores = json.loads((out / "scores.json").read_text())
    assert sum(c["pruned_at_step"] is None for c in scores["candidates"]) == 1
    assert Image.open(out / "best.png").size == (64, 64)
    assert scores["run"]["source"] == {"path": str(image.resolve()), "name": None, "sha256_of": "file",
                                       "sha256": hashlib.sha256(image.read_bytes()).hexdigest()}


@pytest.mark.parametrize("argv, message", [
    (["--image", "x.png"], "--instruction: required with --image"),
    (["--instruction", "do it"], "--instruction: also pass --image"),
    (["--editor", "flux-kontext", "--model", "nobody/kontext"], "'nobody/kontext' is not available offline"),
    (["--editor", "sdxl"], "unknown editor 'sdxl'"),
])
def test_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever the working directory holds (a previous run in runs/) changes nothing
    assert main(["best-of-n", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_no_arguments_uses_the_shipped_world_models(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["best-of-n"])
    if not (WORLD_EDITOR_DIR / "model_index.json").is_file():
        assert code == 2 and "shipped world editor is missing" in capsys.readouterr().err
        return
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 8 and summary["out"] == "runs/best-of-n" and (tmp_path / "runs/best-of-n/contact_sheet.png").is_file()
    assert np.asarray(Image.open(tmp_path / "runs/best-of-n/best.png")).shape == (64, 64, 3)
    assert main(["best-of-n", "--n", "2"]) == 0  # the default folder is taken: the next run gets its own
    assert json.loads(capsys.readouterr().out)["out"] == "runs/best-of-n-2"
    assert len(json.loads((tmp_path / "runs/best-of-n/scores.json").read_text())["candidates"]) == 8  # untouched
    assert len(json.loads((tmp_path / "runs/best-of-n-2/scores.json").read_text())["candidates"]) == 2
