"""``editrl best-of-n``: draw N edits, score them with a reward, keep the best (or prune early).

With no arguments it edits the built-in world example (``editrl.world.examples.builtin_example``) with the shipped
world editor, ranked by the world description judge (``--reward world-describe``).
"""

from __future__ import annotations

import json
import logging

from .. import defaults
from ..argtypes import nonnegative_float, nonnegative_int, open_fraction, positive_int, select_rule

logger = logging.getLogger(__name__)

DEFAULT_OUT = "runs/best-of-n"
"""Where a run goes without --out; when taken, the next free of runs/best-of-n-2, -3, ... (``files.fresh_folder``)."""

EPILOG = """examples:
  editrl best-of-n --n 8                                # a built-in world example, shipped world models -> runs/best-of-n
  editrl best-of-n --n 8 --out runs/bon                 # a folder of your choice
  editrl best-of-n --image cat.png --instruction "make the cat blue" --editor flux-kontext \\
      --reward TIGER-Lab/EditReward-Qwen2.5-VL-7B --search halving --n 16 --out runs/cat
  editrl best-of-n --search adaptive --budget 96 --good -0.05 --out runs/adaptive   # stops early on easy edits

scores.json records how the run was made (editor, model, LoRA, reward, steps, guidance, seeds,
selection, search, source image and its sha256, device, dtype, editrl version). Without --out each run gets a
new folder (runs/best-of-n, runs/best-of-n-2, ...); an --out folder holding a previous run is refused."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "best-of-n", help="sample N edits, rank them with a reward, keep the best",
        description="Sample N candidate edits of one image (one seed each), score them with a reward and rank them. "
        "Writes best.png, candidate_XX_seedS.png for every candidate, contact_sheet.png (scores under each "
        "candidate, the best framed) and scores.json (seed, mu and sigma per dimension, fused score, rank, NFE) "
        "to --out, and prints a JSON summary. With no --image it edits a built-in world example.",
        epilog=EPILOG,
    )
    parser.add_argument("--image", action="append", default=None,
                        help="source image (any format/mode/size; resized to the editor's resolution). Repeat it for an "
                        "editor that takes several (flux2, flux2-klein, qwen-image-edit-plus, qwen-image-edit-2511): the "
                        "first is edited, the others are references. Default: the built-in world example")
    parser.add_argument("--instruction", default=None, help="the edit instruction (required with --image)")
    parser.add_argument("--n", type=positive_int, default=defaults.N, help=f"number of candidates (default {defaults.N})")
    parser.add_argument("--editor", default=defaults.EDITOR, help="world (default, the shipped tiny Kontext), flux-kontext, "
                        "qwen-image-edit, qwen-image-edit-plus, qwen-image-edit-2511, flux2, flux2-klein, longcat-image-edit, "
                        "instruct-pix2pix, or a diffusers pipeline folder")
    parser.add_argument("--model", default=None, help="Hugging Face id or local folder of the editor's weights "
                        "(default: the editor's public id); nothing is downloaded")
    parser.add_argument("--lora", default=None, help="LoRA weights in diffusers format to load on top (e.g. from `editrl grpo`)")
    parser.add_argument("--reward", default=defaults.REWARD, help="world-describe (default: the world VLM judges the edit "
                        "against the instruction's target as it reads the source; world words only), world (the shipped world "
                        "EditReward: rejects deletions, still weak on fine errors), world-verifier, oracle (the world's exact scorer), an EditReward "
                        "folder or Hub id, http(s)://host:port of `editrl reward serve`, "
                        "openai:URL#model=NAME (a generative judge behind a chat-completions endpoint), or module:Class")
    parser.add_argument("--select", type=select_rule, default="fused", metavar="RULE",
                        help="rank by: fused (the fused score, default), lcb (fused mu - k*sigma) or a dimension of the reward "
                        "(EditReward: instruction_following, visual_quality); the old words mean, if, vq still work")
    parser.add_argument("--k", type=nonnegative_float, default=1.0, help="sigma multiplier of --select lcb (default 1)")
    parser.add_argument("--search", choices=("full", "halving", "adaptive"), default="full",
                        help="full: every candidate runs to the end; halving: prune on x0 previews (less compute); "
                        "adaptive: rounds of 8 fresh seeds pruned on previews, within --budget (instead of --n), "
                        "stopping once an edit scores --good")
    parser.add_argument("--budget", type=positive_int, default=None, metavar="NFE",
                        help="adaptive: denoiser evaluations to spend at most (guidance branches counted; default best-of-8's)")
    parser.add_argument("--good", type=float, default=None, metavar="SCORE",
                        help="adaptive: stop once a finished candidate's score - sigma reaches SCORE (default: spend the "
                        "budget; world-describe: -0.05)")
    parser.add_argument("--keep", type=open_fraction, default=0.5, help="halving: fraction kept at each pruning step (default 0.5)")
    parser.add_argument("--horizon", type=open_fraction, default=0.5,
                        help="halving: prune within this first fraction of the steps (default 0.5)")
    parser.add_argument("--steps", type=positive_int, default=None, help="denoising steps (default: the editor's)")
    parser.add_argument("--guidance", type=nonnegative_float, default=None, help="guidance scale (default: the editor's)")
    parser.add_argument("--seed", type=nonnegative_int, default=defaults.SEED,
                        help=f"candidates use seeds SEED..SEED+N-1 (default {defaults.SEED})")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available, bf16 there)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="candidates per denoiser call (default: all)")
    parser.add_argument("--out", default=None, help="output folder, new or without a previous run (default: "
                        f"{DEFAULT_OUT}, or the next free {DEFAULT_OUT}-2, -3, ... so that every run keeps its own)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..errors import EditRLError
    from ..files import check_input, check_output, fresh_folder
    from ..reward.specs import build_reward, check_reward_spec

    check_reward_spec(args.reward, "--reward")  # names, files and folders first, before torch is imported
    check_output(args.out if args.out is not None else DEFAULT_OUT, "--out", folder=True)
    if args.image is not None and args.instruction is not None:  # a lone --image or --instruction is refused below
        for image in args.image:
            check_input(image, "--image", folder_ok=False)
    for flag, value in (("--budget", args.budget), ("--good", args.good)):  # the arguments alone, before torch
        if value is not None and args.search != "adaptive":
            raise EditRLError(f"{flag}: only with --search adaptive (--search {args.search} draws --n candidates)")
    from ..sampler.adaptive import AdaptiveConfig
    from ..sampler.best_of_n import best_of_n, check_out_dir
    from ..sampler.editors import check_editor, load_editor
    from ..sampler.search import HalvingConfig
    from ..sampler.selection import check_select

    check_select(args.select, None)  # a dimension name is checked against the reward's once it is loaded
    check_editor(args.editor, args.model, args.lora)  # then the rest, before any model is loaded
    if args.out is not None:
        check_out_dir(args.out, "--out")
    if args.image is None:
        if args.instruction is not None:
            raise EditRLError("--instruction: also pass --image (without both, the built-in world example is used)")
        from ..world.examples import builtin_example

        example = builtin_example()
        source, instruction = example.source, example.instruction
    else:
        if args.instruction is None:
            raise EditRLError("--instruction: required with --image (what should the edit do?)")
        source, instruction = (args.image[0] if len(args.image) == 1 else args.image), args.instruction
    editor = load_editor(args.editor, model=args.model, lora=args.lora, device=args.device)
    from ..demo import cli_advice, world_notes

    for note in world_notes(editor, None, instruction, cli_advice()):  # an instruction the world editor does not know
        logger.warning("%s", note)
    reward = build_reward(args.reward, device=args.device)
    result = best_of_n(
        editor, reward, source, instruction, n=args.n, seeds=range(args.seed, args.seed + args.n),
        select=args.select, k=args.k, search=args.search, num_steps=args.steps, guidance=args.guidance,
        halving=HalvingConfig(keep=args.keep, horizon=args.horizon), batch_size=args.batch_size, reward_name=args.reward,
        source_name=None if args.image is not None else "built-in world example",
        adaptive=AdaptiveConfig.until(args.budget, args.good),
    )
    out = result.save(args.out if args.out is not None else fresh_folder(DEFAULT_OUT))
    logger.info("wrote %s", out)
    best = result.best
    print(json.dumps({
        "out": str(out), "instruction": instruction, "editor": args.editor, "reward": args.reward,
        "select": args.select, "search": args.search, "n": len(result.candidates), "best_seed": best.seed, "best_score": best.record["score"],
        "best_value": best.value, "nfe": result.nfe, "reward_calls": result.reward_calls,
    }))
    return 0
