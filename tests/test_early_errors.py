"""Every command refuses a typo'd name, a missing input and an unusable output folder before any model loads:
exit code 2, one stderr line naming the flag or config key (and, for a name or a flag, the closest known one).

Each case runs with every model loader replaced by one that fails the test if called, so "before any model
loads" is asserted, not timed."""

from __future__ import annotations

import importlib.util
import json

import pytest

from editrl.cli import main

LOADERS = [
    ("editrl.sampler.editors", "load_editor"),
    ("editrl.reward.specs", "build_reward"),
    ("editrl.reward.model", "EditReward.from_pretrained"),
    ("editrl.rl.trainer", "RLTrainer.__init__"),
    ("editrl.reward.train", "RewardTrainer.__init__"),
    ("editrl.world.train_editor", "EditorTrainer.__init__"),
    ("editrl.world.pretrain", "pretrain"),
    ("editrl.world.datasets", "make_preference_data"),
    ("editrl.world.datasets", "make_benchmark"),
    ("editrl.world.examples", "builtin_example"),
    ("editrl.demo", "build_demo"),
    ("editrl.reward.serve", "serve"),
]
"""Where each command loads a model, or starts its first heavy step: (module, attribute or Class.method)."""


@pytest.fixture
def no_loading(monkeypatch):
    """Every loader of ``LOADERS`` fails the test if it is called."""
    import importlib

    modules = {module: importlib.import_module(module) for module, _ in LOADERS}  # all imported before any is patched,
    for module, path in LOADERS:  # so that no module binds a patched loader by `from ... import` and keeps it
        owner = modules[module]
        *classes, name = path.split(".")
        for cls in classes:
            owner = getattr(owner, cls)

        def loaded(*args, _what=f"{module}.{path}", **kwargs):
            raise AssertionError(f"{_what} was called: the error should have come before any model loads")

        monkeypatch.setattr(owner, name, loaded)


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder with a data table (one row), a file where a folder would go, and a finished best-of-N run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text(json.dumps({"source": "s.png", "instruction": "Remove the red ring.", "edit": "e.png"}) + "\n")
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "scores.json").write_text("{}")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.jsonl").write_text("{}\n")
    (tmp_path / "reward.yaml").write_text("output_dir: out\n")
    return tmp_path


def error_line(argv, capsys) -> str:
    """The single stderr line of ``editrl argv``, which must exit with code 2."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and err and "\n" not in err, (code, err)
    return err


UNKNOWN_EDITOR = "unknown editor 'wrold' (did you mean 'world'?); known: flux-kontext, flux2, flux2-klein, "
UNKNOWN_REWARD = "unknown reward 'wrold' (did you mean 'world'?); known: oracle, "
NOT_CREATABLE = "': cannot create anything in '/proc'"
UNDER_A_FILE = "'afile' is a file, not a folder"

CASES = [
    # best-of-n
    (["best-of-n", "--editor", "wrold"], "--editor: " + UNKNOWN_EDITOR),
    (["best-of-n", "--reward", "wrold"], "--reward: " + UNKNOWN_REWARD),
    (["best-of-n", "--reward", "world-descibe"], "--reward: unknown reward 'world-descibe' (did you mean 'world-describe'?)"),
    (["best-of-n", "--editor", "./my-pipeline"], "--editor './my-pipeline': no such file or folder"),
    (["best-of-n", "--model", "./no-such-folder"], "--model './no-such-folder': no such file or folder, and not a Hugging Face id"),
    (["best-of-n", "--lora", "runs/x/lora"], "--lora 'runs/x/lora': no such file or folder"),
    (["best-of-n", "--image", "nope.png", "--instruction", "Remove the ring."], "--image 'nope.png': no such file"),
    (["best-of-n", "--out", "/proc/editrl"], "--out '/proc/editrl" + NOT_CREATABLE),
    (["best-of-n", "--out", "afile/run"], "--out 'afile/run': " + UNDER_A_FILE),
    (["best-of-n", "--out", "done"], "--out 'done': holds a previous best-of-N run (scores.json, ...)"),
    # demo
    (["demo", "--editor", "world", "--editor", "wrold"], "--editor: " + UNKNOWN_EDITOR),
    (["demo", "--reward", "wrold"], "--reward: " + UNKNOWN_REWARD),
    # filter
    (["filter", "--data", "data.jsonl", "--out", "kept", "--reward", "wrold"], "--reward: " + UNKNOWN_REWARD),
    (["filter", "--data", "nope.jsonl", "--out", "kept"], "--data 'nope.jsonl': no such file or folder"),
    (["filter", "--data", "data.jsonl", "--out", "/proc/kept"], "--out '/proc/kept" + NOT_CREATABLE),
    (["filter", "--data", "data.jsonl", "--out", "afile/kept"], "--out 'afile/kept': " + UNDER_A_FILE),
    # reward score / eval / serve / train
    (["reward", "score", "--data", "data.jsonl", "--out", "s.parquet", "--reward", "wrold"], "--reward: " + UNKNOWN_REWARD),
    (["reward", "score", "--data", "nope.jsonl", "--out", "s.parquet"], "--data 'nope.jsonl': no such file or folder"),
    (["reward", "score", "--data", "data.jsonl", "--out", "/proc/s.parquet"], "--out '/proc/s.parquet" + NOT_CREATABLE),
    (["reward", "score", "--data", "data.jsonl", "--out", "afile/s.parquet"], "--out 'afile/s.parquet': " + UNDER_A_FILE),
    (["reward", "eval", "--bench", "data.jsonl", "--format", "pairs", "--reward", "wrold"], "--reward: " + UNKNOWN_REWARD),
    (["reward", "eval", "--bench", "nope", "--format", "pairs"], "--bench 'nope': no such file or folder"),
    (["reward", "eval", "--bench", "data.jsonl", "--format", "pairs", "--predictions", "/proc/p.jsonl"],
     "--predictions '/proc/p.jsonl" + NOT_CREATABLE),
    (["reward", "serve", "--reward", "wrold"], "--reward: " + UNKNOWN_REWARD),
    (["reward", "train", "--config", "reward.yaml", "--set", "output_dir=/proc/r"], "config key output_dir '/proc/r" + NOT_CREATABLE),
    (["reward", "train", "--config", "reward.yaml", "--set", "output_dir=afile/r"], "config key output_dir 'afile/r': " + UNDER_A_FILE),
    (["reward", "train", "--config", "reward.yaml", "--set", "data.train={format: jsonl, path: nope.jsonl}"],
     "config key data.train.path 'nope.jsonl': no such file or folder"),
    (["reward", "train", "--config", "reward.yaml", "--set", "model={base_model: ./no-backbone}"],
     "config key model.base_model './no-backbone': no such file or folder, and not a Hugging Face id"),
    # world
    (["world", "make-data", "--out", "/proc/d"], "--out '/proc/d" + NOT_CREATABLE),
    (["world", "make-bench", "--out", "afile/b"], "--out 'afile/b': " + UNDER_A_FILE),
    (["world", "train-editor", "--out", "/proc/e"], "--out '/proc/e" + NOT_CREATABLE),
    (["world", "pretrain-vlm", "--out", "afile/v"], "--out 'afile/v': " + UNDER_A_FILE),
    # unknown flags: the sub-command that got them names the closest flag
    (["best-of-n", "--nn", "3"], "unrecognized argument --nn (did you mean --n?)"),
    (["reward", "score", "--data", "d", "--out", "o", "--chunk-sze", "4"], "unrecognized argument --chunk-sze (did you mean --chunk-size?)"),
    (["world", "make-data", "--out", "d", "--seeed=3"], "unrecognized argument --seeed (did you mean --seed?)"),
    # unknown config keys in --set: the same suggestion
    (["grpo", "--set", "lerning_rate=1e-4"], "unknown config key lerning_rate (did you mean learning_rate?)"),
    (["reward", "train", "--config", "reward.yaml", "--set", "los.kind=bt"], "unknown config key los (did you mean loss?)"),
]
PREFIX = {"reward": 2, "world": 2}  # words of the command named before ": error: "


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(argv)[:60] for argv, _ in CASES])
def test_refused_before_any_model_loads(argv, message, place, no_loading, capsys):
    line = error_line(argv, capsys)
    command = " ".join(argv[: PREFIX.get(argv[0], 1)])
    assert line.startswith(f"editrl {command}: error: {message}"), line
    assert sorted(p.name for p in place.iterdir()) == ["afile", "data.jsonl", "done", "reward.yaml", "run"]  # nothing created


@pytest.mark.parametrize("algorithm", ["grpo", "dpo", "nft"])
@pytest.mark.parametrize("setting, message", [
    ("editor=wrold", "config key editor: " + UNKNOWN_EDITOR),
    ("rewards={wrold: 1.0}", "config key rewards: " + UNKNOWN_REWARD),
    ("judge=orcale", "config key judge: unknown reward 'orcale' (did you mean 'oracle'?)"),
    ("model=./no-editor", "config key model './no-editor': no such file or folder, and not a Hugging Face id"),
    ("train_data=prompts.jsonl", "config key train_data 'prompts.jsonl': no such file or folder"),
    ("eval_data=wrold", "config key eval_data: unknown prompt set 'wrold' (did you mean 'world'?); known: world, or a JSONL"),
    ("output_dir=run", "output_dir 'run' already holds a run (log.jsonl): pass --resume to continue it"),
    ("output_dir=/proc/rl", "output_dir '/proc/rl" + NOT_CREATABLE),
    ("output_dir=afile/rl", "output_dir 'afile/rl': " + UNDER_A_FILE),
    pytest.param("optimizer=adamw_8bit", "config key optimizer: adamw_8bit needs bitsandbytes, which is not installed: "
                 "pip install bitsandbytes", marks=pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None,
                                                                      reason="bitsandbytes is installed")),
    ("optimizer=adam", "config key optimizer: expected one of ('adamw', 'adamw_8bit'), got 'adam'"),
])
def test_rl_config_refused_before_any_model_loads(algorithm, setting, message, place, no_loading, capsys):
    line = error_line([algorithm, "--set", setting], capsys)
    assert line.startswith(f"editrl {algorithm}: error: {message}"), line


def test_an_earlier_rl_run_is_checked_only_for_creatability_when_resuming(place, no_loading, capsys):
    """With --resume the folder of an earlier run passes the early checks and the trainer is built (here: refused)."""
    with pytest.raises(AssertionError, match="RLTrainer.__init__ was called"):
        main(["grpo", "--set", "output_dir=run", "--resume"])


def test_a_typo_and_a_hub_id_are_told_apart(place):
    from editrl.errors import EditRLError
    from editrl.reward.specs import check_reward_spec

    for spec in ("world", "oracle", "TIGER-Lab/EditReward-Qwen2.5-VL-7B", "http://127.0.0.1:8765", "json:JSONDecoder", "data.jsonl",
                 "openai:http://127.0.0.1:8000/v1#model=judge"):
        check_reward_spec(spec, "--reward")  # registered word, Hub id, URL, importable module:Class, existing path
    for spec, message in [("wrold", "did you mean 'world'?"), ("./runs/final", "no such file or folder"),
                          ("runs/x/final", "no such file or folder"), ("nomodule_xyz:Reward", "no module 'nomodule_xyz'"),
                          ("", "expected a registered word"), ("openai:127.0.0.1:8000/v1#model=j", "expected openai:http")]:
        with pytest.raises(EditRLError, match=message):
            check_reward_spec(spec, "--reward")


def test_a_reward_module_whose_package_fails_to_import_is_one_line(place, monkeypatch):
    """Finding pkg.mod runs pkg/__init__.py: its failure is one line naming the spec, not a traceback."""
    from editrl.errors import EditRLError
    from editrl.reward.specs import check_reward_spec

    (place / "brokenpkg_xyz").mkdir()
    (place / "brokenpkg_xyz" / "__init__.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(place))
    with pytest.raises(EditRLError, match=r"importing its package failed \(RuntimeError: boom at import\)"):
        check_reward_spec("brokenpkg_xyz.rewards:Reward", "--reward")


def test_a_file_that_exists_is_not_an_output_folder_and_checks_leave_nothing(place):
    from editrl.errors import EditRLError
    from editrl.files import check_output

    assert check_output("new/deeper", "--out", folder=True).name == "deeper"
    with pytest.raises(EditRLError, match="--out 'afile': is a file; expected an output folder"):
        check_output("afile", "--out", folder=True)
    with pytest.raises(EditRLError, match="--out 'run': is a folder; expected an output file path"):
        check_output("run", "--out")
    assert sorted(p.name for p in place.iterdir()) == ["afile", "data.jsonl", "done", "reward.yaml", "run"]


def test_most_checks_come_before_torch_is_imported(place):
    """Names (except the editors', which come with torch), files and folders are refused before torch is imported."""
    import subprocess
    import sys

    argv = [["best-of-n", "--reward", "wrold"], ["best-of-n", "--out", "/proc/x"], ["best-of-n", "--image", "x.png", "--instruction", "x"],
            ["filter", "--reward", "wrold", "--data", "data.jsonl", "--out", "o"], ["reward", "score", "--data", "nope", "--out", "o.parquet"],
            ["reward", "eval", "--bench", "data.jsonl", "--format", "pairs", "--reward", "wrold"], ["reward", "serve", "--reward", "wrold"],
            ["grpo", "--set", "rewards={wrold: 1}"], ["dpo", "--set", "output_dir=run"], ["world", "make-data", "--out", "/proc/x"],
            ["filter", "--data", "nope.jsonl", "--out", "o"], ["filter", "--data", "data.jsonl", "--out", "/proc/o"],
            ["demo", "--reward", "wrold"], ["reward", "train", "--config", "nope.yaml"]]
    script = (f"import json, sys\nfrom editrl.cli import main\ncodes = [main(a) for a in {argv!r}]\n"
              "print(json.dumps([codes, 'torch' in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    codes, torch_loaded = json.loads(result.stdout.splitlines()[-1])
    assert codes == [2] * len(argv) and not torch_loaded
    assert len(result.stderr.strip().splitlines()) == len(argv)
