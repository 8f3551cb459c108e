"""The command line as a user meets it: --version, fast --help with examples and defaults, -q/-v after
the sub-command, and no third-party chatter on stderr from the main commands."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from editrl import __version__
from editrl.cli import build_parser

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ROOT = Path(__file__).resolve().parents[1]
OURS = re.compile(r"^(INFO|WARNING|DEBUG) editrl[.\w]*: |^(scoring|benchmark groups|filter\w*|GRPOTrainer): +(\d+%\||\d+\w+ \[)|^metric |^\S.*\s+[-–\d.]+\s+[-–\d.]+\s+[-–\d.]+$|^\s*$")


def editrl(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "editrl.cli", *args], env=ENV, capture_output=True, text=True, timeout=timeout)


def leaf_parsers(parser, path=()):
    actions = [a for a in parser._actions if a.__class__.__name__ == "_Subcommands"]
    if not actions:
        yield path, parser
    for action in actions:
        for name, sub in action.choices.items():
            yield from leaf_parsers(sub, (*path, name))


def test_version():
    result = editrl("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"editrl {__version__}"


def test_help_of_every_command_imports_nothing_heavy():
    """Building the parser and printing every command's --help (the RL config keys and the generated serve
    flags included) loads none of the heavy libraries: that is what keeps --help well under a second."""
    script = inspect.getsource(leaf_parsers) + (
        "import contextlib, io, sys\nfrom editrl.cli import build_parser, main\npaths = [p for p, _ in leaf_parsers(build_parser())]\n"
        "for path in paths:\n    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "        main([*path, '--help'])\n    assert 'usage: editrl ' + ' '.join(path) in out.getvalue(), path\n"
        "print(len(paths), sorted(m for m in ('torch', 'fastapi', 'transformers', 'diffusers', 'gradio') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    count, loaded = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(count) == len(list(leaf_parsers(build_parser()))) >= 12 and loaded == "[]"


def test_every_command_has_examples_and_shows_every_default():
    for path, parser in leaf_parsers(build_parser()):
        text = parser.format_help()
        assert "example" in text and "editrl " in text.split("example", 1)[1], path
        for action in parser._actions:
            if action.option_strings and action.help != argparse.SUPPRESS and not action.required and action.default is not False and action.nargs != 0:
                assert "default" in (parser._get_formatter()._get_help_string(action) or "").lower(), (path, action.dest)


@pytest.mark.parametrize("argv", [["best-of-n", "-q"], ["-q", "best-of-n"], ["reward", "eval", "--bench", "b", "--format", "pairs", "-v"]])
def test_verbosity_flags_anywhere(argv):
    args = build_parser().parse_args(argv)
    assert args.quiet == ("-q" in argv) and args.verbose == ("-v" in argv)


@pytest.mark.slow
def test_main_commands_print_no_third_party_warnings(tmp_path):
    """best-of-n (world, 2 steps), reward score, filter, one GRPO iteration and reward eval on a world bench: every stderr
    line is editrl's own (log lines, the scoring bar, the eval table)."""
    out = tmp_path / "bon"
    runs = [editrl("best-of-n", "--n", "2", "--steps", "2", "--out", str(out))]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["run"]["editor"] == "world" and scores["run"]["steps"] == 2 and scores["run"]["seeds"] == [0, 1]
    assert scores["run"]["reward"] == "world-describe" and scores["run"]["editrl_version"] == __version__
    again = editrl("best-of-n", "--n", "2", "--steps", "2", "--out", str(out))
    assert again.returncode == 2 and again.stderr.strip().endswith("holds a previous best-of-N run (best.png, ...); choose a new folder or remove that one")
    rows = tmp_path / "edits.jsonl"
    rows.write_text("".join(json.dumps({"source": str(out / "candidate_00_seed0.png"), "instruction": scores["instruction"],
                                        "edit": str(out / f)}) + "\n" for f in ("candidate_00_seed0.png", "candidate_01_seed1.png")))
    runs.append(editrl("reward", "score", "--data", str(rows), "--out", str(tmp_path / "scores.parquet")))
    runs.append(editrl("filter", "--data", str(rows), "--out", str(tmp_path / "filtered"), "--top-k", "1"))
    # GRPO on the world: evaluation prompt 10 (of the first 12) is longer than the editor's 77 CLIP tokens
    runs.append(editrl("grpo", "--config", str(ROOT / "configs" / "grpo" / "world.yaml"), *(f"--set={kv}" for kv in (
        "num_iterations=1", "group_size=2", "groups_per_step=1", "batch_size=2", "num_steps=2", "eval_steps=2", "eval_every=1",
        "eval_prompts=12", "world_train_examples=2", f"output_dir={tmp_path / 'grpo'}", "report_to=none"))))
    runs.append(editrl("world", "make-bench", "--out", str(tmp_path / "bench"), "--n-groups", "2"))
    runs.append(editrl("reward", "eval", "--bench", str(tmp_path / "bench"), "--format", "editreward-bench"))
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
        noise = [line for line in run.stderr.replace("\r", "\n").splitlines() if not OURS.match(line)]
        assert noise == [], run.args
    table = runs[-1].stderr
    assert re.search(r"overall pairwise_accuracy\s+[\d.]{5}\s+[\d.]{5}\s+[\d.]{5}", table)
    result = json.loads(runs[-1].stdout)
    assert {"chance", "ceiling"} <= set(result)
    assert result["predictions"] == str(tmp_path / "bench.world.predictions.jsonl")


@pytest.mark.parametrize("argv, dest, value, note", [
    (["filter", "--data", "d", "--out", "o", "--model", "oracle"], "reward", "oracle", "--model is deprecated; use --reward"),
    (["filter", "--data", "d", "--out", "o", "--by", "instruction_following"], "select", "instruction_following",
     "--by is deprecated; use --select"),
    (["reward", "score", "--data", "d", "--out", "o", "--model", "oracle"], "reward", "oracle", "--model is deprecated; use --reward"),
    (["reward", "serve", "--model", "oracle"], "reward", "oracle", "--model is deprecated; use --reward"),
    (["best-of-n", "--select", "vq"], "select", "visual_quality", "--select vq is deprecated; use --select visual_quality"),
])
def test_old_flags_still_work_with_one_note(argv, dest, value, note, capsys):
    """One vocabulary: --reward names the reward, --select the ranking rule; the old spellings keep working."""
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert capsys.readouterr().err == f"editrl: note: {note}\n"
    new = build_parser().parse_args([{"--model": "--reward", "--by": "--select", "vq": "visual_quality"}.get(a, a) for a in argv])
    assert getattr(new, dest) == value and capsys.readouterr().err == ""
