import json

import pytest
import torch

from editrl.config import build_dataclass as build_config
from editrl.errors import EditRLError
from editrl.runs import STATE_FILE, list_checkpoints
from editrl.world.train_editor import EditorTrainer, EditorTrainingConfig

TINY = dict(num_layers=1, num_single_layers=1, num_attention_heads=2, attention_head_dim=8, latent_channels=4,
            vae_channels=[8, 8, 8], vae_steps=2, vae_batch_size=2, train_examples=4, steps=2, batch_size=2,
            text_tokenizer="bytes", max_sequence_length=112, long_text_probability=0.5, long_text_length=128, long_text_examples=2,
            warmup_steps=1, checkpoint_every=1, sample_steps=2)


def test_trains_saves_and_loads_as_the_world_editor(tmp_path):
    from editrl.sampler.editors import load_editor

    config = EditorTrainingConfig(**TINY)
    trainer = EditorTrainer(config, tmp_path)
    before = {k: v.clone() for k, v in trainer.pipe.transformer.state_dict().items()}
    folder = trainer.train()
    after = trainer.pipe.transformer.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the transformer was updated
    vae = trainer.pipe.vae.config
    assert vae.shift_factor != 0.0 and vae.scaling_factor != 1.0  # latents normalised after the VAE stage
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()] if (tmp_path / "log.jsonl").exists() else []
    assert all(r["stage"] in ("vae", "transformer") for r in log)
    assert json.loads((folder / "editrl_editor.json").read_text()) == {
        "resolution": 64, "default_steps": 2, "default_guidance": 2.5, "max_sequence_length": config.max_sequence_length,
    }
    assert list(folder.glob("transformer/*.safetensors")) and not list(folder.rglob("*.bin"))
    editor = load_editor("world", model=str(folder))
    assert editor.resolution == 64 and editor.default_steps == 2
    assert editor.max_sequence_length == config.max_sequence_length  # the text length it was trained with
    result = editor.sample([trainer.pipe.image_processor.postprocess(torch.zeros(1, 3, 64, 64), output_type="pil")[0]],
                           ["make the background black"], seeds=[0, 1])
    assert len(result.images) == 2 and result.images[0].size == (64, 64)
    # the loaded transformer is the trained one
    loaded = editor.transformer.state_dict()
    assert all(torch.equal(loaded[k], after[k]) for k in after)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    config = EditorTrainingConfig(**TINY)
    straight = EditorTrainer(config, tmp_path / "straight")
    straight.train()

    interrupted = EditorTrainer(config, tmp_path / "resumed")
    interrupted._out_of_time = lambda: interrupted.state["stage"] == "transformer" and interrupted.state["step"] >= 1
    interrupted.train()
    checkpoints = list_checkpoints(tmp_path / "resumed")
    assert [c.name for c in checkpoints] == ["step-000003"]  # 2 VAE steps + 1 transformer step; only the newest kept
    saved = torch.load(checkpoints[0] / STATE_FILE, weights_only=False)
    assert saved["state"] == {**saved["state"], "stage": "transformer", "step": 1}
    # log records a killed run wrote after its checkpoint (2 VAE steps + 1 transformer step) are dropped on resume,
    # counted over both stages: the VAE's step 2 stays, the transformer's step 2 goes
    with open(tmp_path / "resumed" / "log.jsonl", "a") as f:
        for record in ({"stage": "vae", "step": 2, "mse": 0.5}, {"stage": "transformer", "step": 1, "loss": 0.5},
                       {"stage": "transformer", "step": 2, "loss": 9.0}):
            f.write(json.dumps(record) + "\n")
    resumed = EditorTrainer(config, tmp_path / "resumed")
    assert resumed.state["step"] == 1
    kept = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in kept] == [("vae", 2), ("transformer", 1)]
    resumed.train()
    expected = straight.pipe.transformer.state_dict()
    assert all(torch.allclose(v, expected[k], atol=1e-6) for k, v in resumed.pipe.transformer.state_dict().items())
    with pytest.raises(EditRLError, match="another config"):
        EditorTrainer(EditorTrainingConfig(**{**TINY, "steps": 4}), tmp_path / "resumed")


def test_config_errors_name_the_key():
    with pytest.raises(EditRLError, match="attention_head_dim"):
        build_config(EditorTrainingConfig, {"attention_head_dim": 6})
    with pytest.raises(EditRLError, match="unknown config key layers"):
        build_config(EditorTrainingConfig, {"layers": 3})
    with pytest.raises(EditRLError, match="timesteps"):
        build_config(EditorTrainingConfig, {"timesteps": "cosine"})


def test_cli_trains_evaluates_and_writes_the_training_card(tmp_path, capsys):
    import yaml

    from editrl.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert main(["world", "train-editor", "--config", str(config), "--out", str(tmp_path / "run"),
                 "--eval-examples", "2", "--eval-k", "2", "--set", "steps=1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= result["oracle_worst_of_2"] <= result["oracle_1_sample"] <= result["oracle_best_of_2"] <= 1
    card = (tmp_path / "run" / "TRAINING.md").read_text()
    assert "steps: 1" in card and "oracle_best_of_2" in card and "wall time" in card


def test_shipped_editor_is_small_and_loads_as_world():
    import numpy as np

    from editrl.sampler.editors import load_editor
    from editrl.world import make_examples
    from editrl.world.editor import WORLD_EDITOR_DIR

    files = [p for p in WORLD_EDITOR_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 20 * 2**20
    assert (WORLD_EDITOR_DIR / "TRAINING.md").is_file() and not list(WORLD_EDITOR_DIR.rglob("*.bin"))
    editor = load_editor("world")
    assert editor.resolution == 64
    example = make_examples(1, seed=0, split="test")[0]
    images = editor.sample([example.source], [example.instruction], seeds=[0, 1], num_steps=2).images
    assert [im.size for im in images] == [(64, 64)] * 2
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))  # seeds give different candidates


def test_word_tokenizer_reads_every_world_instruction_in_a_few_tokens(tmp_path):
    from editrl.sampler.editors import load_editor
    from editrl.world import make_examples

    config = EditorTrainingConfig(**{**TINY, "text_tokenizer": "words", "max_sequence_length": 24, "long_text_probability": 0.0})
    folder = EditorTrainer(config, tmp_path).train()
    tokenizer = load_editor("world", model=str(folder)).pipe.tokenizer_2  # saved and reloaded with the pipeline
    unk = tokenizer.unk_token_id
    for example in make_examples(300, seed=5) + make_examples(100, seed=5, split="test"):
        ids = tokenizer(example.instruction).input_ids
        assert unk not in ids and len(ids) <= 21, example.instruction
        assert tokenizer.decode(ids) == example.instruction.lower()
    assert tokenizer("make the magenta blob red").input_ids.count(unk) == 2  # words outside the world are unknown
    assert tokenizer("Make").input_ids == tokenizer("make").input_ids
    with pytest.raises(EditRLError, match="text_tokenizer"):
        build_config(EditorTrainingConfig, {"text_tokenizer": "sentencepiece"})


def test_shipped_editor_reproduces_its_documented_figures():
    """fixed_figures.json (written when the editor was shipped, see TRAINING.md): oracle figures of 4
    samples on 10 held-out examples; the shipped editor reproduces them, and they show the spread
    best-of-N and RL need (some samples follow the instruction, others do not)."""
    from editrl.sampler.editors import load_editor
    from editrl.world.editor import WORLD_EDITOR_DIR
    from editrl.world.train_editor import evaluate_editor

    documented = json.loads((WORLD_EDITOR_DIR / "fixed_figures.json").read_text())
    measured = evaluate_editor(load_editor("world"), **documented["arguments"])
    for key, value in documented["figures"].items():
        assert measured[key] == pytest.approx(value, abs=0.03), key
    figures = documented["figures"]
    assert figures["oracle_worst_of_4"] < figures["oracle_1_sample"] < figures["oracle_best_of_4"]
    assert figures["oracle_best_of_4"] - figures["oracle_worst_of_4"] > 0.1
    assert figures["share_if_ge_0.85_any_of_4"] > 0  # at least one fully followed instruction


def test_init_continues_an_editor_folder_and_keeps_its_vae(tmp_path):
    """init: the run starts from the folder's transformer and VAE (latent normalisation included), skips the VAE
    stage and trains the transformer on; a VAE stage or a different architecture with init is one error naming the key."""
    first = EditorTrainer(EditorTrainingConfig(**TINY), tmp_path / "first").train()
    config = EditorTrainingConfig(**{**TINY, "init": str(first), "vae_steps": 0, "seed": 1})
    trainer = EditorTrainer(config, tmp_path / "continued")
    from diffusers import FluxKontextPipeline

    saved = FluxKontextPipeline.from_pretrained(str(first), local_files_only=True)
    start = trainer.pipe.transformer.state_dict()
    assert all(torch.equal(v, start[k]) for k, v in saved.transformer.state_dict().items())
    trainer.train()
    after = trainer.pipe.transformer.state_dict()
    assert any(not torch.equal(v, after[k]) for k, v in saved.transformer.state_dict().items())
    assert all(torch.equal(v, trainer.pipe.vae.state_dict()[k]) for k, v in saved.vae.state_dict().items())
    assert trainer.pipe.vae.config.scaling_factor == saved.vae.config.scaling_factor != 1.0
    with pytest.raises(EditRLError, match="vae_steps: expected 0 with init"):
        EditorTrainingConfig(**{**TINY, "init": str(first)}).validate()
    with pytest.raises(EditRLError, match=r"num_attention_heads=4 \(init has 2\)"):
        EditorTrainer(EditorTrainingConfig(**{**TINY, "init": str(first), "vae_steps": 0, "num_attention_heads": 4}), tmp_path / "bad")
    with pytest.raises(EditRLError, match=r"resolution=128 \(init has 64\)"):
        EditorTrainer(EditorTrainingConfig(**{**TINY, "init": str(first), "vae_steps": 0, "resolution": 128}), tmp_path / "bad")
    with pytest.raises(EditRLError, match="init: .* is not an editor folder"):
        EditorTrainingConfig(**{**TINY, "init": str(tmp_path), "vae_steps": 0}).validate()
    from editrl.world.train_editor import training_card

    assert f"continued from the editor in `{first}`" in training_card(tmp_path / "continued")
    assert "continued from" not in training_card(tmp_path / "first")
