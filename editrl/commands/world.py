"""``editrl world {make-data,make-bench,train-editor}``: world datasets in the public EditReward schemas,
and the training of the shipped tiny editor."""

from __future__ import annotations

import json

from ..files import check_output


def _make_data(args) -> int:
    check_output(args.out, "--out", folder=True)  # before any work
    from ..world.datasets import make_preference_data

    path = make_preference_data(args.out, n=args.n, seed=args.seed, size=args.size)
    print(json.dumps({"train": str(path), "pairs": args.n, "seed": args.seed}))
    return 0


def _make_bench(args) -> int:
    check_output(args.out, "--out", folder=True)  # before any work
    from ..world.datasets import make_benchmark

    paths = make_benchmark(args.out, n_groups=args.n_groups, seed=args.seed, size=args.size)
    print(json.dumps({"files": [str(p) for p in paths], "groups_per_k": args.n_groups, "seed": args.seed}))
    return 0


def _train_editor(args) -> int:
    check_output(args.out, "--out", folder=True)  # before any work
    from ..rl.config import load_config
    from ..world.train_editor import EditorTrainer, EditorTrainingConfig, evaluate_editor, training_card

    config = load_config(EditorTrainingConfig, args.config, args.set)
    trainer = EditorTrainer(config, args.out)
    folder = trainer.train()
    result = {"model": str(folder)}
    if args.eval_examples:
        result.update(evaluate_editor(trainer.editor(), n=args.eval_examples, k=args.eval_k, seed=config.seed))
    (trainer.out / "TRAINING.md").write_text(training_card(trainer.out, {k: v for k, v in result.items() if k != "model"}))
    print(json.dumps(result))
    return 0


def _pretrain_vlm(args) -> int:
    check_output(args.out, "--out", folder=True)  # before any work
    from ..config import load_config
    from ..world.pretrain import PretrainConfig, pretrain

    folder = pretrain(load_config(PretrainConfig, args.config, args.set), args.out)
    print(json.dumps({"model": str(folder)}))
    return 0


def _common(parser, what: str) -> None:
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help=f"seed; the same seed writes the same {what} (default: 0)")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels, 64 to 128 (default 64)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "world", help="the procedural editing world: make datasets and benchmarks",
        description="The procedural editing world: 64 px scenes of flat shapes, an exact oracle, and the shipped "
        "tiny editor and reward trained on it.",
        epilog="""examples:
  editrl world make-data --out data/world --n 1000
  editrl world make-bench --out data/world --n-groups 100""",
    )
    world = parser.add_subparsers(dest="world_command", metavar="WORLD_COMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

    data = world.add_parser("make-data", help="write OUT/train.parquet: preference pairs in the EditReward-Data schema",
                            epilog="example:\n  editrl world make-data --out data/world --n 1000 --seed 0")
    _common(data, "file")
    data.add_argument("--n", type=int, default=1000, help="number of preference pairs (default 1000)")
    data.set_defaults(func=_make_data)

    bench = world.add_parser("make-bench", help="write OUT/{2,3,4}pair.parquet: a benchmark in the EditReward-Bench schema",
                             epilog="example:\n  editrl world make-bench --out data/world --n-groups 100\n"
                             "  editrl reward eval --bench data/world --format editreward-bench")
    _common(bench, "files")
    bench.add_argument("--n-groups", type=int, default=100, help="candidate groups per K = 2, 3, 4 (default 100)")
    bench.set_defaults(func=_make_bench)

    train = world.add_parser("train-editor", help="train the tiny world editor (FluxKontextPipeline) by flow matching",
                             epilog="example:\n  editrl world train-editor --out runs/editor --set steps=200")
    train.add_argument("--config", default=None, help="YAML file of EditorTrainingConfig keys (default: the shipped editor's)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key (repeatable)")
    train.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl, training.json and model/ "
                       "(a save_pretrained folder); an interrupted run resumes from it")
    train.add_argument("--eval-examples", type=int, default=50, help="held-out examples for the oracle figures (0 = skip)")
    train.add_argument("--eval-k", type=int, default=8, help="samples per example for the best-of-k oracle figure")
    train.set_defaults(func=_train_editor)

    vlm = world.add_parser("pretrain-vlm", help="pretrain the tiny world VLM (the base of the world reward) on world image-text tasks",
                           epilog="example:\n  OMP_NUM_THREADS=1 editrl world pretrain-vlm --config configs/world/vlm.yaml --out runs/world-vlm")
    vlm.add_argument("--config", default=None, help="YAML file of PretrainConfig keys (default: configs/world/vlm.yaml's values)")
    vlm.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override one config key (repeatable; default: none)")
    vlm.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl and model/ (a save_pretrained folder); "
                     "an interrupted run resumes from it")
    vlm.set_defaults(func=_pretrain_vlm)
