"""Hostile inputs against every command that reads user data, the reward server, and random kills.

Prints one JSON object of counts (goal: crashes, 5xx, silently wrong and rows lost/repeated all 0):

* ``cases``: hostile CLI invocations (bad numbers, bomb/damaged/100000x1 images, wrong encodings and row
  shapes, lone surrogates, broken symbolic links in a data folder, bad outputs, conflicting resumes) plus
  hostile server requests;
* ``crashes``: a traceback instead of one error line (CLI) or a dead server;
* ``server_5xx``: 5xx answers to hostile requests;
* ``silently_wrong``: a hostile case that exited 0, or a resumed run whose table differs from a
  clean run on the same data;
* ``kills``: runs SIGKILLed mid-run (``--kills`` per command and data variant, 8 by default);
* ``rows_lost`` / ``rows_repeated``: over those SIGKILLs at random chunk boundaries of
  ``editrl reward score`` and ``editrl filter``, each rerun with the same data and with one row changed.

Usage: ``python benchmarks/hostile_inputs.py [--kills 2] [--rows 16]``. On this project's 2-core CPU machine,
shared with other jobs (load average about 10), ``OMP_NUM_THREADS=1 python benchmarks/hostile_inputs.py``
took 24-32 s of wall time and 12 s of CPU. Everything runs in this one process (killed runs are forks of it):
starting a fresh interpreter for each killed run and each rerun cost about 5 s of CPU apiece (importing torch,
transformers and the world), 16 of them, most of the 104 s of CPU (11 minutes on the loaded machine) it took so.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from hostile_cases import bomb_png, png_bytes, rewrite, snapshot, world_table  # noqa: E402


def run_cli(argv: list[str]) -> tuple[int | None, str]:
    """(exit code or None for a crash, stderr) of ``editrl argv`` in process."""
    from editrl.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        except Exception:  # noqa: BLE001 - a traceback is what this benchmark counts
            return None, err.getvalue() + traceback.format_exc()
    return code, err.getvalue()


def cli_cases(work: Path) -> list[list[str]]:
    """Hostile invocations, each of which must end with one error line and exit 2."""
    data = world_table(work / "data", rows=4)
    folder = data.parent
    (folder / "bomb.png").write_bytes(bomb_png())
    from PIL import Image

    (folder / "cut.png").write_bytes(png_bytes(Image.new("RGB", (64, 64), "red"))[:60])
    Image.new("RGB", (100000, 1)).save(folder / "strip.png")
    variants = {
        "bomb": lambda rows: rows[1].update(edit="bomb.png"), "cut": lambda rows: rows[1].update(edit="cut.png"),
        "null": lambda rows: rows[1].update(edit=None), "blank": lambda rows: rows[1].update(instruction=" "),
        "number": lambda rows: rows[1].update(instruction=7), "nosource": lambda rows: rows[1].pop("source"),
        "surrogate": lambda rows: rows[1].update(instruction="make it \ud800 red"), "strip": lambda rows: rows[1].update(edit="strip.png"),
    }
    tables = []
    for name, change in variants.items():
        path = folder / f"{name}.jsonl"
        shutil.copy(data, path)
        rewrite(path, change)
        tables.append(path)
    for name, links in (("loop", {"a.jsonl": "b.jsonl", "b.jsonl": "a.jsonl"}), ("dangling", {"a.jsonl": "gone.jsonl"})):
        (work / name).mkdir()
        shutil.copy(data, work / name / "data.jsonl")
        for link, target in links.items():
            (work / name / link).symlink_to(target)
        tables.append(work / name)  # a folder of tables holding a broken link
    (folder / "latin1.jsonl").write_bytes(data.read_bytes() + b'{"id": "caf\xe9"}\n')
    (folder / "list.jsonl").write_text("[1, 2]\n")
    (folder / "fake.parquet").write_bytes(b"PAR1 not parquet")
    (folder / "empty.jsonl").write_text("")
    tables += [folder / n for n in ("latin1.jsonl", "list.jsonl", "fake.parquet", "empty.jsonl", "missing.jsonl")]
    out = str(work / "out.parquet")
    cases = [["reward", "score", "--reward", "oracle", "--data", str(t), "--out", out] for t in tables]
    cases += [["filter", "--reward", "oracle", "--data", str(t), "--out", str(work / "kept")] for t in tables]
    cases += [["reward", "eval", "--reward", "oracle", "--format", "pairs", "--bench", str(t), "--predictions", str(work / "p.jsonl")]
              for t in tables[-5:]]
    (work / "folder").mkdir()
    cases += [
        ["reward", "score", "--reward", "oracle", "--data", str(data), "--out", str(work / "folder")],
        ["reward", "score", "--reward", "oracle", "--data", str(data), "--out", str(data) + "/x.parquet"],
        ["filter", "--reward", "oracle", "--data", str(data), "--out", str(data)],
        ["best-of-n", "--reward", "oracle", "--n", "1", "--image", str(folder / "bomb.png"), "--instruction", "x", "--out", str(work / "b")],
    ]
    for flag, value in (("--batch-size", "-1"), ("--chunk-size", "0"), ("--batch-size", "x")):
        cases.append(["reward", "score", "--data", str(data), "--out", out, flag, value])
    for flag, value in (("--top-fraction", "2"), ("--top-k", "-1"), ("--min-if", "inf")):
        cases.append(["filter", "--data", str(data), "--out", str(work / "kept"), flag, value])
    cases += [["reward", "serve", "--port", "99999"], ["reward", "serve", "--max-queue", "0"], ["best-of-n", "--n", "-2"]]
    # conflicting resumes: scored with the oracle, then another reward / changed data
    assert run_cli(["reward", "score", "--reward", "oracle", "--data", str(data), "--out", str(work / "done.parquet")])[0] == 0
    changed = folder / "changed.jsonl"
    shutil.copy(data, changed)
    rewrite(changed, lambda rows: rows.reverse())
    cases += [["reward", "score", "--reward", "world", "--data", str(data), "--out", str(work / "done.parquet")],
              ["reward", "score", "--reward", "oracle", "--data", str(changed), "--out", str(work / "done.parquet")]]
    return cases


def server_cases() -> list[tuple[dict | bytes, dict]]:
    from PIL import Image

    good = base64.b64encode(png_bytes(Image.new("RGB", (32, 32), "red"))).decode()
    item = lambda s, e, t="make it red": {"source": s, "instruction": t, "edit": e}  # noqa: E731
    bodies: list = [
        {"items": [item({"path": "a\x00b"}, good)]}, {"items": [item({"path": "../../etc/passwd"}, good)]},
        {"items": [item(base64.b64encode(bomb_png()).decode(), good)]}, {"items": [item(good, "@@@")]},
        {"items": [item(good, base64.b64encode(b"\x89PNG\r\n\x1a\n junk").decode())]}, {"items": []},
        {"items": [item(good, good, "")]}, {"items": [item(good, good)] * 100}, {"items": "x"}, {"other": 1},
        {"items": [item(good, base64.b64encode(png_bytes(Image.new("RGB", (100000, 1)))).decode())]},
        b"{not json", b"\xff\xfe", b"[]", b"null", b"x" * (2 * 1024 * 1024),
        json.dumps({"items": [item(good, good, "make it \ud800 red")]}).encode(),  # a lone surrogate, escaped as JSON allows
    ]
    return [(body, {"Authorization": "Bearer t"}) for body in bodies] + [({"items": [item(good, good)]}, {})]


def run_server(counts: dict) -> None:
    import httpx

    from editrl.reward.serve import ServeConfig, serve_in_thread
    from editrl.world import Oracle

    root = tempfile.mkdtemp()
    config = ServeConfig(port=0, token="t", image_root=root, max_request_bytes=1024 * 1024)
    with serve_in_thread(Oracle(), config) as url, httpx.Client(base_url=url, timeout=30) as client:
        for body, headers in server_cases():
            counts["cases"] += 1
            try:
                response = (client.post("/v1/score", json=body, headers=headers) if isinstance(body, dict)
                            else client.post("/v1/score", content=body, headers={**headers, "Content-Type": "application/json"}))
            except httpx.HTTPError:
                counts["crashes"] += 1
                continue
            counts["server_5xx"] += response.status_code >= 500
            counts["silently_wrong"] += response.status_code < 400
        if client.get("/health").status_code != 200:
            counts["crashes"] += 1
    shutil.rmtree(root)


def _parts(out: Path) -> int:
    return sum(1 for p in out.parent.rglob("part-*.parquet")) if out.parent.exists() else 0


def _run_silently(argv: list[str]) -> None:
    """The body of a forked run that is about to be killed: ``editrl argv`` with its output discarded."""
    from editrl.cli import main

    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    sys.exit(main(argv))


def kill_cycles(work: Path, kills: int, rows: int, counts: dict, seed: int) -> None:
    """SIGKILL score/filter runs at random chunk boundaries, rerun (same data, or one row changed)
    and compare the final table with a clean in-process run on the final data.

    The killed run is a fork of this process (editrl and torch already imported): a SIGKILL leaves its files
    exactly as it would a fresh ``python -m editrl.cli``, without paying that interpreter's imports (about 5 s of
    CPU each, most of this benchmark's time when it started one per run). Reruns run in process."""
    import multiprocessing

    import pyarrow.parquet as pq

    from editrl.reward.score import score_table
    from editrl.tables import read_rows
    from editrl.world import Oracle

    rng = random.Random(seed)
    fork = multiprocessing.get_context("fork")
    base = world_table(work / "kills", rows=rows)
    for command in ("score", "filter"):
        for change in (False, True):
            for k in range(kills):
                case = work / f"{command}-{change}-{k}"
                case.mkdir()
                data = case / "data.jsonl"
                rewrite_target = [json.loads(line) for line in base.read_text().splitlines()]
                data.write_text("".join(json.dumps({**r, "source": str(base.parent / r["source"]), "edit": str(base.parent / r["edit"])}) + "\n"
                                        for r in rewrite_target))
                out = case / ("out.parquet" if command == "score" else "kept")
                argv = (["reward", "score", "--out", str(out)] if command == "score" else ["filter", "--top-k", "3", "--out", str(out)])
                argv += ["--reward", "oracle", "--data", str(data), "--chunk-size", "2"]
                watched = out if command == "score" else out / "scores" / "shard-0-of-1.parquet"
                target = rng.randint(1, rows // 2 - 1)
                process = fork.Process(target=_run_silently, args=(argv,))
                process.start()
                while process.is_alive() and _parts(watched) < target:
                    time.sleep(0.005)
                os.kill(process.pid, signal.SIGKILL)  # not yet joined: a run that already ended is a zombie, unharmed
                process.join()
                counts["kills"] += process.exitcode == -signal.SIGKILL  # a run that ended first was not killed
                changed_row = None
                if change:
                    changed_row = rng.randrange(rows)
                    rewrite(data, lambda rs: rs[changed_row].update(edit=rs[(changed_row + 1) % rows]["edit"]))  # another row's edit
                stored_before = snapshot(case)
                code, err = run_cli(argv)
                if code != 0:
                    last = (err.strip().splitlines() or [""])[-1]
                    if code is None:
                        counts["crashes"] += 1
                        print(f"{command} change={change}: a traceback\n{err}", file=sys.stderr)
                        continue
                    refused = change and "changed in the data" in last
                    counts["refused_changed_resumes"] += refused
                    if not refused or snapshot(case) != stored_before:
                        counts["silently_wrong"] += 1
                        print(f"{command} change={change}: {last}", file=sys.stderr)
                    continue
                reference = score_table(Oracle(), list(read_rows(data)), case / "reference.parquet", progress=False)
                got = pq.read_table(out if command == "score" else out / "scores.parquet")
                want = pq.read_table(reference["out"])
                got_rows = got.column("row").to_pylist()
                counts["rows_lost"] += len(set(range(rows)) - set(got_rows))
                counts["rows_repeated"] += len(got_rows) - len(set(got_rows))
                same = got.column("score").to_pylist() == want.column("score").to_pylist() and \
                    got.column("row_hash").to_pylist() == want.column("row_hash").to_pylist()
                counts["silently_wrong"] += not same
                if not same:
                    print(f"{command} change={change}: the resumed table differs from a clean run", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=2, help="kills per command and data variant (default 2)")
    parser.add_argument("--rows", type=int, default=16, help="rows of the killed tables (default 16)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = dict(cases=0, crashes=0, server_5xx=0, silently_wrong=0, kills=0, rows_lost=0, rows_repeated=0, refused_changed_resumes=0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for argv in cli_cases(work / "cli"):
            counts["cases"] += 1
            code, err = run_cli(argv)
            lines = err.strip().splitlines()
            if code is None:
                counts["crashes"] += 1
            elif code == 0:
                counts["silently_wrong"] += 1
            elif not lines or ": error: " not in lines[-1] or any("Traceback" in line for line in lines):
                counts["crashes"] += 1
        run_server(counts)
        kill_cycles(work, args.kills, args.rows, counts, args.seed)
    counts["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
