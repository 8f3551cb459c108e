"""Hostile input over every command that reads user data: each case asserts the exact error line,
the exit code, and that nothing already written was lost or changed (nothing created where nothing
existed). Also EXIF orientation and the official image conversion."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from hostile_cases import bomb_png, exif_rotated_jpeg, odd_mode_images, png_bytes, rewrite, snapshot, world_table  # noqa: E402

from editrl.cli import main  # noqa: E402
from editrl.errors import EditRLError  # noqa: E402
from editrl.images import ImageTooLarge, load_image, open_image  # noqa: E402

BOMB = f"declares over {2 * Image.MAX_IMAGE_PIXELS} pixels (a decompression bomb?); the limit is {Image.MAX_IMAGE_PIXELS} pixels"


def run_cli(argv, capsys) -> tuple[int, str]:
    """(exit code, last stderr line) of ``editrl argv`` run in process."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    lines = capsys.readouterr().err.strip().splitlines()
    return code, lines[-1] if lines else ""


def expect(capsys, tmp_path, argv, line: str, regex: bool = False, code: int = 2) -> None:
    """``line``: the error line after ``editrl <command>: error: `` (the prefix is the CLI's)."""
    before = snapshot(tmp_path)
    got_code, got_line = run_cli(argv, capsys)
    assert got_code == code
    assert got_line.startswith("editrl ") and ": error: " in got_line, got_line
    message = got_line.split(": error: ", 1)[1]
    assert re.fullmatch(line, message) if regex else message == line, message
    assert snapshot(tmp_path) == before  # nothing written, lost or changed


@pytest.fixture
def data(tmp_path):
    return world_table(tmp_path / "data")


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("argv, line", [
    (["reward", "score", "--data", "d", "--out", "o", "--batch-size", "-1"], "argument --batch-size: expected an integer >= 1, got '-1'"),
    (["reward", "score", "--data", "d", "--out", "o", "--chunk-size", "0"], "argument --chunk-size: expected an integer >= 1, got '0'"),
    (["reward", "eval", "--bench", "b", "--format", "pairs", "--batch-size", "-3"], "argument --batch-size: expected an integer >= 1, got '-3'"),
    (["filter", "--data", "d", "--out", "o", "--batch-size", "-1"], "argument --batch-size: expected an integer >= 1, got '-1'"),
    (["filter", "--data", "d", "--out", "o", "--top-fraction", "1.5"], "argument --top-fraction: expected a number >= 0 and <= 1, got '1.5'"),
    (["filter", "--data", "d", "--out", "o", "--min-if", "nan"], "argument --min-if: expected a number, got 'nan'"),
    (["filter", "--data", "d", "--out", "o", "--top-k", "-2"], "argument --top-k: expected an integer >= 0, got '-2'"),
    (["reward", "serve", "--port", "99999"], "argument --port: expected an integer >= 0 and <= 65535, got '99999'"),
    (["reward", "serve", "--max-batch", "0"], "argument --max-batch: expected an integer >= 1, got '0'"),
    (["best-of-n", "--n", "0"], "argument --n: expected an integer >= 1, got '0'"),
    (["best-of-n", "--keep", "0"], "argument --keep: expected a number > 0 and <= 1, got '0'"),
    (["best-of-n", "--batch-size", "-1"], "argument --batch-size: expected an integer >= 1, got '-1'"),
])
def test_numeric_arguments_are_refused_at_parse_time(argv, line, capsys, tmp_path):
    expect(capsys, tmp_path, argv, line)


# ---------------------------------------------------------------- editrl reward score


def test_score_hostile_files(data, tmp_path, capsys):
    folder, out = data.parent, tmp_path / "out.parquet"
    score = ["reward", "score", "--reward", "oracle", "--data", str(data), "--out"]
    (folder / "bomb.png").write_bytes(bomb_png())
    rewrite(data, lambda rows: rows[1].update(edit="bomb.png"))
    expect(capsys, tmp_path, score + [str(out)], f"{data}:2 (id r1) edit: '{folder / 'bomb.png'}' {BOMB}")
    (folder / "cut.png").write_bytes(png_bytes(Image.new("RGB", (64, 64), "red"))[:60])
    rewrite(data, lambda rows: rows[1].update(edit="cut.png"))
    expect(capsys, tmp_path, score + [str(out)],
           rf"{re.escape(str(data))}:2 \(id r1\) edit: '{re.escape(str(folder / 'cut.png'))}' is not a readable image \(.+\)", regex=True)
    Image.new("RGB", (100000, 1)).save(folder / "strip.png")
    rewrite(data, lambda rows: rows[1].update(edit="strip.png"))
    expect(capsys, tmp_path, score + [str(out)],
           f"{data}:2 (id r1) edit: '{folder / 'strip.png'}' is a 100000x1 image; its long side may be at most 200 times its short side")
    expect(capsys, tmp_path, ["reward", "score", "--reward", "world", "--data", str(data), "--out", str(out)],
           f"{data}:2 (id r1) edit: '{folder / 'strip.png'}' is a 100000x1 image; its long side may be at most 200 times its short side")
    rewrite(data, lambda rows: rows[1].update(edit=None))
    expect(capsys, tmp_path, score + [str(out)], f"{data}:2 (id r1): the edited image (edit) is empty (null)")
    rewrite(data, lambda rows: rows[1].update(edit="e1.png", instruction="  "))
    expect(capsys, tmp_path, score + [str(out)], f"{data}:2 (id r1) instruction: expected a non-empty instruction string, got '  '")
    rewrite(data, lambda rows: rows[1].update(instruction="make it \ud800 red"))  # JSON escapes it; json.loads accepts it
    assert "\\ud800" in data.read_text()
    expect(capsys, tmp_path, score + [str(out)], f"{data}:2 (id r1) instruction: not valid Unicode text (a lone surrogate "
           "'\\ud800' at character 9); fix the text's encoding")

    bad = folder / "latin1.jsonl"
    bad.write_bytes(data.read_bytes().splitlines(keepends=True)[0] + b'{"id": "caf\xe9"}\n')
    expect(capsys, tmp_path, score[:-3] + ["--data", str(bad), "--out", str(out)],
           f"{bad}:2: not UTF-8 text (byte 0xe9 at column 12); save the table as UTF-8")
    bad.write_text('[1, 2]\n')
    expect(capsys, tmp_path, score[:-3] + ["--data", str(bad), "--out", str(out)],
           f"{bad}:1: expected a JSON object per line, got a list")
    fake = folder / "fake.parquet"
    fake.write_bytes(b"PAR1 this is not parquet")
    expect(capsys, tmp_path, score[:-3] + ["--data", str(fake), "--out", str(out)],
           rf"{re.escape(str(fake))}: not a readable Parquet file \(.+\)", regex=True)
    texts = pa.array([b"make it red", b"make it \xed\xa0\x80 red"], pa.binary()).view(pa.string())  # a surrogate, UTF-8 encoded
    pq.write_table(pa.table({"source": ["s0.png", "s1.png"], "instruction": texts, "edit": ["e0.png", "e1.png"]}), fake)
    expect(capsys, tmp_path, score[:-3] + ["--data", str(fake), "--out", str(out)],
           f"{fake} row 1: the 'instruction' cell is not valid UTF-8 text; save the table's text as UTF-8")
    empty = folder / "empty.jsonl"
    empty.write_text("\n")
    expect(capsys, tmp_path, score[:-3] + ["--data", str(empty), "--out", str(out)],
           f"--data '{empty}': the table has no rows; nothing to score")


@pytest.mark.parametrize("links", [{"a.jsonl": "b.jsonl", "b.jsonl": "a.jsonl"}, {"a.jsonl": "gone.jsonl"}], ids=["loop", "dangling"])
def test_a_broken_symlink_in_a_data_folder_is_named(data, tmp_path, capsys, links):
    for name, target in links.items():
        (data.parent / name).symlink_to(target)
    assert not (data.parent / "a.jsonl").exists()
    line = f"data '{data.parent / 'a.jsonl'}': a symbolic link whose target is missing or that loops (-> '{links['a.jsonl']}'); fix or remove the link"
    out = str(tmp_path / "out.parquet")
    for argv in (["reward", "score", "--reward", "oracle", "--data", str(data.parent), "--out", out],
                 ["filter", "--reward", "oracle", "--data", str(data.parent), "--top-k", "1", "--out", str(tmp_path / "kept")],
                 ["reward", "eval", "--reward", "oracle", "--format", "pairs", "--bench", str(data.parent), "--predictions", out]):
        expect(capsys, tmp_path, argv, line)
    # the link itself as --data: refused by the command's input check, in the same words
    expect(capsys, tmp_path, ["reward", "score", "--reward", "oracle", "--data", str(data.parent / "a.jsonl"), "--out", out],
           line.replace("data '", "--data '", 1))


def test_score_outputs_checked_before_work(data, tmp_path, capsys):
    score = ["reward", "score", "--reward", "oracle", "--data", str(data), "--out"]
    folder = tmp_path / "a_folder"
    folder.mkdir()
    expect(capsys, tmp_path, score + [str(folder)], f"--out '{folder}': is a folder; expected an output file path")
    expect(capsys, tmp_path, score + [str(data) + "/x.parquet"], f"--out '{data}/x.parquet': '{data}' is a file, not a folder")


def test_score_resume_refuses_another_run(data, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    score = ["reward", "score", "--reward", "oracle", "--data", str(data), "--out", str(out)]
    assert run_cli(score, capsys)[0] == 0
    scores = pq.read_table(out)
    assert scores.column("row").to_pylist() == [0, 1, 2, 3] and len(set(scores.column("row_hash").to_pylist())) == 4
    assert run_cli(score, capsys)[0] == 0 and pq.read_table(out).equals(scores)  # same run: nothing rescored
    world = ["reward", "score", "--reward", "world", "--data", str(data), "--out", str(out)]
    expect(capsys, tmp_path, world, f"--out '{out}': holds scores of another run (the reward class changed "
           "(editrl.world.oracle.Oracle -> editrl.reward.model.EditReward)); use another --out, or delete it to rescore")
    # same row count, one image changed: the old score must not be attached to the new row
    Image.open(data.parent / "e3.png").rotate(90).save(data.parent / "e3b.png")
    rewrite(data, lambda rows: rows[2].update(edit="e3b.png"))
    expect(capsys, tmp_path, score, f"--out '{out}': 1 of the 4 rows scored there changed in the data since "
           f"(first: {data}:3); use another --out, or delete it to rescore")
    rewrite(data, lambda rows: rows[2].update(edit="e2.png"))
    popped = []
    rewrite(data, lambda rows: popped.append(rows.pop()))  # the data shrank
    expect(capsys, tmp_path, score, f"--out '{out}': holds scores of row 3 but the data now has 3 rows; "
           "use another --out, or delete it to rescore")
    rewrite(data, lambda rows: rows.extend([popped[0], dict(rows[0], id="r4")]))  # appended rows are fine
    assert run_cli(score, capsys)[0] == 0
    grown = pq.read_table(out)
    assert grown.column("row").to_pylist() == [0, 1, 2, 3, 4] and grown.slice(0, 3).equals(scores.slice(0, 3).cast(grown.schema))


# ---------------------------------------------------------------- editrl filter


def test_filter_hostile(data, tmp_path, capsys):
    out = tmp_path / "kept"
    base = ["filter", "--reward", "oracle", "--data", str(data), "--top-k", "2", "--out"]
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    expect(capsys, tmp_path, base + [str(afile)], f"--out '{afile}': is a file; expected an output folder")
    assert run_cli(base + [str(out)], capsys)[0] == 0
    # same row count, new content: the old rows' scores must not be attached to the new rows
    rewrite(data, lambda rows: rows.reverse())
    expect(capsys, tmp_path, base + [str(out)], f"--out '{out}/scores/shard-0-of-1.parquet': 4 of the 4 rows scored "
           f"there changed in the data since (first: {data}:1); use another --out, or delete it to rescore")
    (data.parent / "bomb.png").write_bytes(bomb_png())
    rewrite(data, lambda rows: rows.append(dict(rows[0], id="r9", source="bomb.png")))
    expect(capsys, tmp_path, base + [str(tmp_path / "other")], f"{data}:5 (id r9) source: '{data.parent / 'bomb.png'}' {BOMB}")


# ---------------------------------------------------------------- a full disk


@pytest.mark.parametrize("command", ["score", "filter"])
def test_a_full_disk_while_writing_parts_keeps_them_and_a_rerun_continues(data, tmp_path, capsys, monkeypatch, command):
    """The third part write fails with ENOSPC after writing some bytes: one line naming the part and what was
    kept, the two complete parts stay, the half-written temporary is gone, and a rerun scores only the rest."""
    import errno
    import json

    out = tmp_path / "out"
    argv = (["reward", "score", "--out", str(out / "scores.parquet")] if command == "score" else ["filter", "--top-k", "2", "--out", str(out)])
    argv += ["--reward", "oracle", "--data", str(data), "--chunk-size", "1"]
    parts = out / ("scores.parquet.parts" if command == "score" else "scores/shard-0-of-1.parquet.parts")
    write, calls = pq.write_table, []

    def full_disk(table, where, *args, **kwargs):
        calls.append(where)
        if len(calls) == 3:
            Path(where).write_bytes(b"PAR1 half a part")
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", full_disk)
    code, line = run_cli(argv, capsys)
    assert code == 2, line
    assert line.split(": error: ", 1)[1] == (
        f"{parts / 'part-000000002.parquet'}: the disk is full (no space left on the device, or over the quota); "
        f"the 2 rows scored so far are kept in '{parts}'; free space and rerun the same command to continue from them")
    assert sorted(p.name for p in parts.iterdir()) == ["part-000000000.parquet", "part-000000001.parquet"]
    monkeypatch.setattr(pq, "write_table", write)
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["scored" if command == "score" else "scored_now"] == 2  # only the two rows not yet scored
    scores = pq.read_table(out / "scores.parquet")
    assert scores.column("row").to_pylist() == [0, 1, 2, 3] and not parts.exists()
    assert main(["reward", "score", "--reward", "oracle", "--data", str(data), "--out", str(tmp_path / "clean.parquet")]) == 0
    assert scores.column("score").to_pylist() == pq.read_table(tmp_path / "clean.parquet").column("score").to_pylist()


# ---------------------------------------------------------------- editrl reward eval


def _bench_row(cell, **overrides):
    return {"id": "g_0", "instruction": "make it red", "source_image": cell, "candidate_1": cell, "candidate_2": cell,
            "ranking": "A>B", "comparison_type": "AvsB", **overrides}


def test_eval_hostile_benchmarks(tmp_path, capsys):
    cell = {"bytes": png_bytes(Image.new("RGB", (16, 16), "red")), "path": None}
    run = ["reward", "eval", "--reward", "oracle", "--format", "editreward-bench", "--predictions", str(tmp_path / "p.jsonl"), "--bench"]
    bench = tmp_path / "bench_2pair.parquet"
    pq.write_table(pa.Table.from_pylist([_bench_row(cell, ranking="A>C", comparison_type=None)]), bench)
    expect(capsys, tmp_path, run + [str(bench)],
           "bench_2pair.parquet row 0 (id g_0): ranking 'A>C' names candidate C, but the group has 2 candidates (A/B)")
    pq.write_table(pa.Table.from_pylist([_bench_row(cell, candidate_1=None)]), bench)
    expect(capsys, tmp_path, run + [str(bench)], "bench_2pair.parquet row 0 (id g_0): the first edit (candidate_1) is empty (null)")
    bench.write_bytes(b"not parquet at all")
    expect(capsys, tmp_path, run + [str(bench)], rf"{re.escape(str(bench))}: not a readable Parquet file \(.+\)", regex=True)


# ---------------------------------------------------------------- best-of-n and the demo's loader


def test_best_of_n_and_demo_refuse_a_bomb(tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    expect(capsys, tmp_path, ["best-of-n", "--reward", "oracle", "--n", "1", "--image", str(bomb), "--instruction", "x", "--out", str(tmp_path / "o")],
           f"sources[0]: '{bomb}' {BOMB}")
    from editrl.demo import score_uploads
    from editrl.world import Oracle

    with pytest.raises(ImageTooLarge, match=re.escape(f"edited image bomb.png: '{bomb}' {BOMB}")):
        score_uploads(Oracle(), Image.new("RGB", (8, 8)), "make it red", [str(bomb)])


# ---------------------------------------------------------------- image loading


def test_exif_orientation_and_pixel_limit(tmp_path):
    stored = exif_rotated_jpeg(tmp_path / "phone.jpg")
    shown = load_image(tmp_path / "phone.jpg")
    assert shown.size == (20, 40) and stored.size == (40, 20)
    assert np.asarray(shown)[5, 10, 0] > 200 and np.asarray(shown)[35, 10, 2] > 200  # red on top after the 90-degree turn
    assert load_image(tmp_path / "phone.jpg", conversion="official").size == (40, 20)  # the official code ignores EXIF
    with pytest.raises(ImageTooLarge, match=r"^x: the bytes are a 40x20 image \(800 pixels\), over the limit of 799 pixels$"):
        open_image((tmp_path / "phone.jpg").read_bytes(), "x", max_pixels=799)
    with pytest.raises(EditRLError, match="conversion 'gamma'"):
        load_image(stored, conversion="gamma")


def test_official_editreward_converts_like_the_official_code(tmp_path):
    """An EditReward with the official config scores RGBA / 16-bit / EXIF files exactly as PIL's
    ``convert("RGB")`` of the same file (what the official fetch_image does); editrl's conversion is an option."""
    from editrl.reward.model import EditReward, EditRewardConfig
    from editrl.tiny import tiny_qwen25vl

    paths = {**odd_mode_images(tmp_path), "exif": tmp_path / "phone.jpg"}
    exif_rotated_jpeg(paths["exif"])
    backbone, processor = tiny_qwen25vl(0)
    torch.manual_seed(1)
    config = EditRewardConfig(base_model="tiny", templates="world", head_hidden_sizes=(16, 8), min_pixels=56 * 56, max_pixels=56 * 56)
    reward = EditReward.from_backbone(backbone, processor, config).eval()
    source = Image.new("RGB", (48, 48), (90, 120, 30))
    files = [str(p) for p in paths.values()]
    official = [Image.open(p).convert("RGB") for p in files]
    by_file = reward.score([source] * 3, ["make it red"] * 3, files).score
    assert torch.equal(by_file, reward.score([source] * 3, ["make it red"] * 3, official).score)
    reward.config.image_conversion = "editrl"
    ours = reward.score([source] * 3, ["make it red"] * 3, files).score
    assert torch.equal(ours, reward.score([source] * 3, ["make it red"] * 3, [load_image(p) for p in files]).score)
    assert not torch.equal(ours, by_file)  # the two conversions do differ on these inputs
