"""The 2026 editors (FLUX.2 dev and Klein, Qwen-Image-Edit-2511) through the commands users run, each from a
tiny saved pipeline folder (the real classes, random weights): `editrl best-of-n --editor NAME --model FOLDER`
and one `editrl grpo` iteration that trains a LoRA which then changes the editor's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from editrl.cli import main
from editrl.sampler.editors import load_editor
from editrl.tiny import tiny_flux2, tiny_flux2_klein, tiny_longcat_image_edit, tiny_qwen_image_edit

BUILDS = {
    "flux2": tiny_flux2,
    "flux2-klein": tiny_flux2_klein,
    "qwen-image-edit-2511": lambda: tiny_qwen_image_edit(plus=True, zero_cond_t=True),
    "longcat-image-edit": tiny_longcat_image_edit,
}
SEVERAL = ["flux2", "flux2-klein", "qwen-image-edit-2511"]  # the editors that take several sources; LongCat takes one
SETTINGS = {"resolution": 64, "default_steps": 2}
NFE_PER_STEP = {"flux2": 1, "flux2-klein": 2, "qwen-image-edit-2511": 2, "longcat-image-edit": 2}


@pytest.fixture(scope="module", params=sorted(BUILDS))
def saved(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    BUILDS[request.param]().save_pretrained(folder)
    settings = dict(SETTINGS, **({"condition_resolution": 64} if request.param.startswith("qwen") else {}))
    (folder / "editrl_editor.json").write_text(json.dumps(settings))
    return request.param, folder


def test_best_of_n_on_a_saved_folder(saved, tmp_path, capsys):
    name, folder = saved
    Image.new("RGB", (64, 64), (200, 40, 40)).save(tmp_path / "src.png")
    out = tmp_path / "run"
    argv = ["best-of-n", "--editor", name, "--model", str(folder), "--reward", "toys:Brightness", "--n", "2", "--seed", "5",
            "--image", str(tmp_path / "src.png"), "--instruction", "make it blue", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["nfe"] == 2 * SETTINGS["default_steps"] * NFE_PER_STEP[name]
    scores = json.loads((out / "scores.json").read_text())
    # the candidates are the editor's own samples for those seeds
    editor = load_editor(name, model=str(folder), device="cpu")
    expected = editor.sample([Image.open(tmp_path / "src.png")], "make it blue", [5, 6])
    assert sorted(c["seed"] for c in scores["candidates"]) == [5, 6]
    for candidate in scores["candidates"]:
        image = expected.images[candidate["seed"] - 5]
        saved_image = Image.open(out / candidate["file"]).convert("RGB")
        assert saved_image.size == (64, 64) and list(saved_image.getdata()) == list(image.getdata())


def test_one_grpo_iteration_trains_a_lora(saved, tmp_path, capsys):
    """LongCat's pipeline cannot save or load LoRA: GRPO refuses it in one line before any work."""
    name, folder = saved
    data = tmp_path / "prompts.jsonl"
    with open(data, "w") as f:
        for i, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
            Image.new("RGB", (64, 64), colour).save(tmp_path / f"src{i}.png")
            f.write(json.dumps({"source": f"src{i}.png", "instruction": f"edit number {i}"}) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(dict(
        editor=name, model=str(folder), resolution=64, num_steps=2, eval_steps=2, group_size=2, groups_per_step=2,
        batch_size=4, num_iterations=1, learning_rate=0.05, lora_rank=2, lora_alpha=2, rewards={"toys:Brightness": 1.0},
        judge=None, save_every=1, train_data=str(data), eval_data=str(data), output_dir=str(tmp_path / "run"),
        device="cpu", ema_update_every=1,  # the saved EMA LoRA moves after this one optimizer step
    )))
    if name == "longcat-image-edit":
        assert main(["grpo", "--config", str(config)]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
            "editor longcat-image-edit: its LongCatImageEditPipeline cannot save or load LoRA weights, so RL cannot train "
            "it (use it for best-of-n)")
        return
    assert main(["grpo", "--config", str(config)]) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 1 and log[-1]["grad_norm"] > 0
    source = Image.open(tmp_path / "src0.png")
    plain = load_editor(name, model=str(folder), device="cpu").sample([source], "edit number 0", [1]).latents
    tuned = load_editor(name, model=str(folder), device="cpu", lora=str(tmp_path / "run" / "lora"))
    assert not torch.allclose(tuned.sample([source], "edit number 0", [1]).latents, plain, atol=1e-6)


def test_several_images_in_best_of_n_and_grpo(saved, tmp_path, capsys):
    """`--image a --image b`: the first is edited, scores.json names both; a GRPO table row may list its sources.
    An editor of one source (LongCat) refuses two in one line and writes nothing."""
    name, folder = saved
    for i, colour in enumerate([(200, 40, 40), (40, 40, 200)]):
        Image.new("RGB", (64, 64), colour).save(tmp_path / f"src{i}.png")
    images = [str(tmp_path / "src0.png"), str(tmp_path / "src1.png")]
    argv = ["best-of-n", "--editor", name, "--model", str(folder), "--reward", "toys:Brightness", "--n", "2", "--device", "cpu",
            "--image", images[0], "--image", images[1], "--instruction", "paint 1 in the colour of 2", "--out", str(tmp_path / "bon")]
    if name not in SEVERAL:
        capsys.readouterr()
        assert main(argv) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"{name} takes one source image per prompt, got 2" in line and not (tmp_path / "bon" / "scores.json").exists()
        return
    assert main(argv) == 0
    scores = json.loads((tmp_path / "bon" / "scores.json").read_text())
    import hashlib

    run = scores["run"]  # the edited image, then the references, each by path and the sha256 of its bytes
    assert [run["source"]["path"]] + [r["path"] for r in run["references"]] == [str(Path(p).resolve()) for p in images]
    assert run["references"][0]["sha256"] == hashlib.sha256(Path(images[1]).read_bytes()).hexdigest()
    editor = load_editor(name, model=str(folder), device="cpu")
    expected = editor.sample([[Image.open(p) for p in images]], "paint 1 in the colour of 2", [0, 1]).images[0]  # one batch
    first = next(c for c in scores["candidates"] if c["seed"] == 0)
    assert list(Image.open(tmp_path / "bon" / first["file"]).convert("RGB").getdata()) == list(expected.getdata())

    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"source": ["src0.png", "src1.png"], "instruction": f"edit {i}"}) + "\n" for i in range(2)))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(dict(
        editor=name, model=str(folder), resolution=64, num_steps=2, eval_steps=2, group_size=2, groups_per_step=1,
        batch_size=2, num_iterations=1, lora_rank=2, lora_alpha=2, rewards={"toys:Brightness": 1.0}, judge=None,
        train_data=str(data), eval_data=str(data), output_dir=str(tmp_path / "run"), device="cpu",
    )))
    capsys.readouterr()
    assert main(["grpo", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 1


def test_an_editor_of_one_source_refuses_two_images(tmp_path, capsys):
    from editrl.world.editor import WORLD_EDITOR_DIR

    for i in range(2):
        Image.new("RGB", (64, 64)).save(tmp_path / f"src{i}.png")
    argv = ["best-of-n", "--editor", str(WORLD_EDITOR_DIR), "--reward", "toys:Brightness", "--n", "1", "--device", "cpu",
            "--image", str(tmp_path / "src0.png"), "--image", str(tmp_path / "src1.png"), "--instruction", "x",
            "--out", str(tmp_path / "bon")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("takes one source image per prompt, got 2; pass fewer --image or an editor that takes several "
                            "(flux2, flux2-klein, qwen-image-edit-plus, qwen-image-edit-2511)")
