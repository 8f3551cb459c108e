"""The README as a newcomer follows it: on a fresh copy of the repository, the main job runs twice (each run in its
own folder), then the tests that touch the working directory pass from inside that copy, beside those runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_block(checkout: Path, name: str) -> str:
    """The commands of the README's ``<!-- ci:NAME -->`` block, read by ``.ci/run``'s own ``readme_block``
    (so this test and CI can never disagree on what the README says)."""
    ci = (checkout / ".ci" / "run").read_text()
    start = ci.index("readme_block() {")
    function = ci[start:ci.index("\n}\n", start) + 3]
    done = subprocess.run(["bash", "-c", f"{function}\nreadme_block {name}"], cwd=checkout, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def fresh_copy(destination: Path) -> Path:
    """What a fresh clone of this checkout would hold, uncommitted changes included: the tracked files and the
    untracked ones git does not ignore (``git clone`` would miss uncommitted work; a plain copy would bring along
    earlier runs, caches and the virtual environment)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot tell which files a fresh clone holds")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed and absent
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.mark.slow
def test_the_readme_main_job_runs_twice_then_the_tests_pass_beside_its_runs(tmp_path):
    copy = fresh_copy(tmp_path / "editrl")
    assert not (copy / "runs").exists() and not (copy / ".venv").exists()
    main_job = readme_block(copy, "main")
    assert main_job.startswith("editrl best-of-n") and "--out" not in main_job  # the embedded default, default folder
    assert readme_block(copy, "install") and readme_block(copy, "test")  # the blocks .ci/run runs are still there
    # the copy's editrl, run through the environment's `editrl` command as a user's shell finds it
    env = {**os.environ, "PYTHONPATH": str(copy), "OMP_NUM_THREADS": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    outs = []
    for _ in range(2):
        done = subprocess.run(["bash", "-c", main_job], cwd=copy, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outs.append(json.loads(done.stdout.strip().splitlines()[-1])["out"])
    assert outs == ["runs/best-of-n", "runs/best-of-n-2"]
    first, second = (json.loads((copy / out / "scores.json").read_text()) for out in outs)
    assert len(first["candidates"]) == len(second["candidates"]) == 8
    assert first["run"]["source"] == second["run"]["source"] and first["run"]["source"]["name"] == "built-in world example"
    tests = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/sampler/test_cli.py",
                            "tests/test_files.py"], cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert sorted(p.name for p in (copy / "runs").iterdir()) == ["best-of-n", "best-of-n-2"]  # the tests wrote nothing here
