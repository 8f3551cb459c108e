"""benchmarks/world_report.py: the Table-4 verdicts over several seeds (mean difference, 2 SE with the seeds' spread)."""


from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


@pytest.fixture(scope="module")
def report(load_benchmark):
    return load_benchmark("world_report")


def record(model, seed, accuracy, n=10_000):
    return {"model": model, "seed": seed, "vs_oracle": {"pairwise_accuracy_without_ties": accuracy, "oracle_decided_pairs": n}}


def claim(report, records, better="V-multi-mean", worse="I-pointwise"):
    text = next(text for text, b, w in report.PAPER_COMPARISONS if (b, w) == (better, worse))
    return next(c for c in report.comparisons(records) if c["claim"] == text)


def test_consistent_gain_over_three_seeds_reproduces_and_its_mirror_is_reversed(report):
    better = [record("V-multi-mean", s, a) for s, a in enumerate([0.70, 0.71, 0.69])]
    worse = [record("I-pointwise", s, a) for s, a in enumerate([0.60, 0.62, 0.60])]
    c = claim(report, better + worse)
    assert c["seeds"] == [0, 1, 2] and c["verdict"] == "reproduces"
    assert c["difference"] == pytest.approx(np.mean([0.10, 0.09, 0.09]))
    assert c["per_seed_differences"] == pytest.approx([0.10, 0.09, 0.09])
    mirrored = [record("V-multi-mean", r["seed"], r["vs_oracle"]["pairwise_accuracy_without_ties"]) for r in worse]
    mirrored += [record("I-pointwise", r["seed"], r["vs_oracle"]["pairwise_accuracy_without_ties"]) for r in better]
    assert claim(report, mirrored)["verdict"] == "reversed"


def test_two_se_adds_the_seeds_spread_to_the_sampling_error(report):
    # per-seed differences +10 / -6 / +10 points: a mean of +4.7 that the benchmark's sampling error alone
    # (2 SE = 1.4 points at n = 10000) would call a reproduction; the seeds disagree, so it is not separable
    a, b = [0.60, 0.44, 0.60], [0.50, 0.50, 0.50]
    records = [record("V-multi-mean", s, x) for s, x in enumerate(a)] + [record("I-pointwise", s, x) for s, x in enumerate(b)]
    c = claim(report, records)
    d = np.subtract(a, b)
    sampling = (np.mean(a) * (1 - np.mean(a)) + np.mean(b) * (1 - np.mean(b))) / 10_000
    assert c["two_se"] == pytest.approx(2 * np.sqrt(sampling + np.var(d, ddof=1) / 3))
    assert c["verdict"] == "not separable (within 2 SE)"


def test_one_seed_keeps_the_binomial_error_and_unmatched_seeds_are_ignored(report):
    records = [record("V-multi-mean", 0, 0.70, n=400), record("I-pointwise", 0, 0.60, n=400), record("V-multi-mean", 1, 0.10, n=400)]
    c = claim(report, records)
    assert c["seeds"] == [0]  # seed 1 ran for one variant only: not compared
    assert c["two_se"] == pytest.approx(2 * np.sqrt((0.7 * 0.3 + 0.6 * 0.4) / 400))
    assert c["verdict"] == "reproduces"  # +10 points > 2 SE = 6.7
    assert claim(report, records, "V-multi-mean", "II-shared-mean")["verdict"] == "not run"


def test_chance_note_judges_each_variant_by_its_mean_over_seeds(report):
    # seed 0 alone is far above chance (70%); the mean over three seeds (50%) is not
    records = [record("V-multi-mean", s, a, n=1000) for s, a in enumerate([0.70, 0.40, 0.40])]
    assert "no ablation variant is above chance" in report.chance_note(records)
    records = [record("V-multi-mean", s, a, n=1000) for s, a in enumerate([0.70, 0.60, 0.65])]
    assert "Above chance" in report.chance_note(records) and "V-multi-mean" in report.chance_note(records)


def test_train_variant_passes_the_seed_and_reuses_only_a_run_of_the_same_steps_and_seed(report, tmp_path, monkeypatch):
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        out = Path(command[command.index("--set") + 1].split("=", 1)[1])
        (out / "final").mkdir(parents=True)
        (out / "final" / "model.safetensors").write_bytes(b"")
        return SimpleNamespace(returncode=0, stdout='{"max_steps": 40}\n', stderr="")

    monkeypatch.setattr(report.subprocess, "run", fake_run)
    monkeypatch.setattr(report, "training_inputs", lambda config: "base-1")
    final, summary = report.train_variant("V-multi-mean", 40, tmp_path, seed=2)
    assert final == tmp_path / "ablation" / "V-multi-mean" / "seed-2" / "final"
    assert {"seed=2", "model.seed=2", "max_steps=40"} <= set(calls[0]) and summary["seed"] == 2
    report.train_variant("V-multi-mean", 40, tmp_path, seed=2)
    assert len(calls) == 1  # the finished run is reused
    with pytest.raises(SystemExit, match="40 steps, seed 2, not 80 steps"):
        report.train_variant("V-multi-mean", 80, tmp_path, seed=2)
    monkeypatch.setattr(report, "training_inputs", lambda config: "base-2")  # the world VLM replaced since
    with pytest.raises(SystemExit, match="was trained from another base model, training data or config"):
        report.train_variant("V-multi-mean", 40, tmp_path, seed=2)
    summary_file = tmp_path / "ablation" / "V-multi-mean" / "seed-2" / "summary.json"
    summary_file.write_text('{"max_steps": 40, "seed": 2}')  # written before the inputs were recorded
    with pytest.raises(SystemExit, match="made before its base model, training data and config were recorded"):
        report.train_variant("V-multi-mean", 40, tmp_path, seed=2)
    assert len(calls) == 1


def test_training_inputs_change_with_the_base_model_the_data_and_the_config(report, tmp_path):
    base, data = tmp_path / "vlm", tmp_path / "data"
    base.mkdir()
    data.mkdir()
    (base / "model.safetensors").write_bytes(b"weights")
    (data / "train.parquet").write_bytes(b"pairs")
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{base_model: {base}}}\ndata: {{train: {{path: {data}}}}}\n")
    first = report.training_inputs(config)
    assert report.training_inputs(config) == first
    (base / "model.safetensors").write_bytes(b"weights, retrained")
    second = report.training_inputs(config)
    (data / "train.parquet").write_bytes(b"other pairs")
    third = report.training_inputs(config)
    config.write_text(config.read_text() + "learning_rate: 1.0e-4\n")
    assert len({first, second, third, report.training_inputs(config)}) == 4


def test_too_few_editor_pairs_is_refused_before_any_work(report, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["world_report.py", "--editor-pairs", "1", "--work", "/nonexistent/never-made"])
    with pytest.raises(SystemExit) as exit_info:
        report.main()
    assert exit_info.value.code == 2
    assert "--editor-pairs 1: expected at least 2 pairs" in capsys.readouterr().err


def png(image):
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_exact_wins_truth_names_the_only_exactly_right_sample(report):
    from editrl.world import make_examples

    a, b = make_examples(2, seed=0, split="test")
    rows = [{"source": png(ex.source), "instruction": ex.instruction, "a": png(first), "b": png(second)}
            for ex, first, second in ((a, a.target, a.source), (b, b.source, b.target), (a, a.target, a.target), (b, b.source, b.source))]
    assert report.exact_wins_truth(rows).tolist() == [1, -1, 0, 0]


def test_editor_pair_figures_score_the_exact_pairs_with_the_fused_score_not_the_first_dimension(report):
    # scoring the exact pairs with the IF deltas, or against the IF truth, gives 0.0 instead of 0.5
    truths = {"fused": np.array([1, -1, 0]), "if": np.array([0, 1, -1]), "exact": np.array([1, 0, -1])}
    figures = report.editor_pair_figures(truths, deltas=np.array([0.5, -0.2, 0.3]), if_deltas=np.array([-1.0, 1.0, 1.0]))
    assert figures == {"editor_pairs_vs_oracle": 1.0, "editor_pairs_if_head_vs_oracle_if": 0.5, "editor_pairs_exact_wins": 0.5}


def test_reward_deltas_score_each_candidate_once_for_the_score_and_the_first_head(report):
    """score(a) - score(b) and mu[0](a) - mu[0](b) from one scoring of every distinct candidate."""
    import torch
    from PIL import Image

    from editrl.reward.output import RewardOutput

    images = [png(Image.new("RGB", (8, 8), (v, 0, 0))) for v in (10, 20, 30)]
    calls = []

    class Reward:
        def score(self, sources, instructions, edits, batch_size=None):
            calls.append(len(edits))
            red = torch.tensor([float(e.getpixel((0, 0))[0]) for e in edits])
            mu = torch.stack([-red, red], 1)  # the first head ranks the other way round from the score
            return RewardOutput(mu=mu, sigma=torch.zeros_like(mu), score=red, score_sigma=torch.zeros_like(red),
                                dimensions=("instruction_following", "visual_quality"))

    rows = [{"source": images[0], "instruction": "x", "a": images[1], "b": images[2]},
            {"source": images[0], "instruction": "x", "a": images[2], "b": images[1]}]
    deltas = report.reward_deltas(Reward(), rows)
    assert calls == [2]  # two distinct candidates, one call
    assert deltas["score"].tolist() == [-10.0, 10.0] and deltas["first_dimension"].tolist() == [10.0, -10.0]


def test_audit_rows_add_the_held_out_categories_and_keep_the_training_categories_rows(report):
    """The training categories' rows are the ones of reports made before the held-out categories existed (pixel
    hash computed at base 3cf4719); every held-out category is compared too."""
    import hashlib
    import io

    from PIL import Image

    from editrl.world.audit import CATEGORIES, HELD_OUT_CATEGORIES
    from editrl.world.instructions import parse_instruction

    rows = report.audit_rows(6, 7)
    digest = hashlib.sha256()
    training = [r for r in rows if r["group"] in CATEGORIES]
    for r in training:
        digest.update(r["group"].encode() + np.asarray(Image.open(io.BytesIO(r["b"]))).tobytes())
    assert len(training) == 57 and digest.hexdigest() == "68a961d38dfe7e293b0e415736ed78f2ad502d2955287c1f7201aad898aa4f29"
    # also-other (recolours and adds only) applies to none of these 6 examples
    assert {r["group"] for r in rows} - set(CATEGORIES) == set(HELD_OUT_CATEGORIES) - {"also-other"} | {"swapped-instruction"}
    swapped = [r for r in rows if r["group"] == "swapped-instruction"]
    assert swapped and all(r["a"] == r["b"] and r["instruction_b"] != r["instruction"] for r in swapped)
    # the held-out categories' rows are those of the reports made before swapped-instruction existed (base d6aff40)
    held_out = hashlib.sha256()
    for r in rows:
        if r["group"] in HELD_OUT_CATEGORIES:
            held_out.update(r["group"].encode() + r["instruction"].encode() + np.asarray(Image.open(io.BytesIO(r["b"]))).tobytes())
    assert held_out.hexdigest() == "3ce2f6a174767e5b9184e9803179a7216f83f9db946ae931ddc22b8b7f974ca7"
    for r in swapped:  # one word differs, and the swapped instruction is one of the grammar, asking another edit
        changed = [(x, y) for x, y in zip(r["instruction"].split(), r["instruction_b"].split()) if x != y]
        assert len(changed) == 1 and len(r["instruction"].split()) == len(r["instruction_b"].split())
        assert parse_instruction(r["instruction_b"]) != parse_instruction(r["instruction"])


def test_a_row_may_score_its_second_candidate_under_another_instruction(report):
    """reward_deltas gives b the row's instruction_b where there is one: the same image under two instructions."""
    import torch
    from PIL import Image

    from editrl.reward.output import RewardOutput

    image = png(Image.new("RGB", (8, 8), (10, 0, 0)))

    class Reward:  # scores the instruction's length, whatever the image
        def score(self, sources, instructions, edits, batch_size=None):
            mu = torch.tensor([[float(len(i)), 0.0] for i in instructions])
            return RewardOutput(mu=mu, sigma=torch.zeros_like(mu), score=mu[:, 0], score_sigma=torch.zeros(len(mu)),
                                dimensions=("instruction_following", "visual_quality"))

    rows = [{"source": image, "instruction": "long one", "instruction_b": "short", "a": image, "b": image},
            {"source": image, "instruction": "same", "a": image, "b": image}]
    assert report.reward_deltas(Reward(), rows)["score"].tolist() == [3.0, 0.0]


def test_audit_table_marks_the_held_out_categories(report):
    info = {"audit_cases": 3, "editor_if_pairs": 2, "editor_exact_pairs": 1}
    record = {"model": "m", "audit_target_wins": {"deleted": 1.0, "swapped": 0.5, "mirrored": 0.25}}
    table = report.audit_table([record], info)
    assert "| deleted | swapped* | mirrored* |" in table and "| 100.0 | 50.0 | 25.0 |" in table
    assert "Categories marked * are held out: never used to train any world model." in table
    older = report.audit_table([{"model": "m", "audit_target_wins": {"deleted": 1.0}}], info)
    assert "| deleted |" in older and "*" not in older
