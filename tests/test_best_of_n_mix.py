"""benchmarks/best_of_n_mix.py: best-of-8 under two rewards mixed, from two runs' cached candidates."""

import json
import math

import pytest


@pytest.fixture(scope="module")
def mix(load_benchmark):
    return load_benchmark("best_of_n_mix")


def record(first_values, oracle, settings="s", pad=6):
    """One pair's record; ``pad`` more candidates (scored far below the others) make the 8 the benchmark needs."""
    first_values, oracle = first_values + [-1e6] * pad, oracle + [0.0] * pad
    return {"settings": settings, "pair": 0, "reward_values": first_values, "oracle": oracle,
            "exact_edit": [1.0 if o > 0.9 else 0.0 for o in oracle], "lost_object": [1.0 if o == 0.4 else 0.0 for o in oracle]}


def test_log_and_prob_fusions_pick_differently_when_no_candidate_is_likely_right(mix):
    # the judge: candidate 0 is least unlikely (-20), candidate 1 -30; the quality reward prefers candidate 1 (a clean deletion)
    first = record([-20.0, -30.0], [0.3, 0.4])
    second = record([0.0, 1.0], [0.3, 0.4])
    assert mix.select(first, second, "log", 1.0) == 0  # -20 > -30 + 1
    assert mix.select(first, second, "log", 9.0) == 0 and mix.select(first, second, "log", 11.0) == 1  # -30 + w x 1 > -20 past w = 10
    assert mix.select(first, second, "prob", 1.0) == 1  # e^-20 < e^-30 + 1
    assert mix.select(first, second, "prob", 0.0) == 0
    # a likely-right candidate keeps its lead under prob until the weight outgrows its probability
    sure = record([math.log(0.9), -30.0], [1.0, 0.4])
    assert mix.select(sure, second, "prob", 0.5) == 0 and mix.select(sure, second, "prob", 1.0) == 1
    second_outcomes = dict(second, exact_edit=[1.0, 1.0], lost_object=[0.0, 0.0])  # the outcomes are read from the first file
    row = mix.summary({0: sure}, {0: second_outcomes}, "prob", 1.0)
    assert (row["oracle_score"], row["exact_edit"], row["lost_object"]) == (0.4, 0.0, 1.0)


def test_files_of_different_candidates_or_settings_are_refused_or_filtered(mix, tmp_path, monkeypatch, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    stale = record([0.0, 0.0], [0.9, 0.9], settings="old")
    a.write_text(json.dumps(stale) + "\n" + json.dumps(record([-1.0, -2.0], [0.3, 0.4], settings="new")) + "\n")
    assert mix.newest_records(a)[0]["settings"] == "new"  # earlier settings' records are ignored
    b.write_text(json.dumps(record([0.0, 1.0], [0.3, 0.5])) + "\n")
    monkeypatch.setattr("sys.argv", ["best_of_n_mix.py", "--first", str(a), "--second", str(b)])
    with pytest.raises(SystemExit, match="pair 0: the two files' candidates differ"):
        mix.main()
    b.write_text(json.dumps(record([0.0, 1.0], [0.3, 0.4], pad=5)) + "\n")
    with pytest.raises(SystemExit, match=r"pair 0: expected at least 8 candidates in both files, the same number, got \[7, 8\]"):
        mix.main()
    b.write_text(json.dumps(record([0.0, 1.0], [0.3, 0.4])) + "\n")
    mix.main()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["first_settings"] == "new" and lines[0]["second_settings"] == "s"
    lines = lines[1:]
    assert lines[0] == {"single": {"oracle_score": 0.3, "exact_edit": 0.0, "lost_object": 0.0}}
    assert {(r["fusion"], r["weight"]) for r in lines[1:]} >= {("log", 0.0), ("prob", 1.0)}
