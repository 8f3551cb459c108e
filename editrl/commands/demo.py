"""``editrl demo``: the Gradio page (see ``editrl.demo``)."""

from __future__ import annotations

import argparse
import logging

from .. import defaults
from ..errors import EditRLError

EPILOG = """examples:
  editrl demo                                   # http://127.0.0.1:7860, shipped world editor + reward, CPU
  editrl demo --editor flux-kontext --reward TIGER-Lab/EditReward-Qwen2.5-VL-7B --device cuda"""


def _flag(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="open the Gradio page: best-of-N with scores under each candidate, and scoring of your own edits",
        description="A Gradio page for best-of-N editing (same candidates and scores as `editrl best-of-n` for the "
        "same seed) and for scoring your own edited images. Runs on the shipped world models on CPU by default: "
        "they know only the world's 64 px toy scenes and its instruction words (see `editrl world --help`).",
        epilog=EPILOG,
    )
    p.add_argument("--editor", action="append", default=None,
                   help="editor name (world, flux-kontext, qwen-image-edit, qwen-image-edit-plus, instruct-pix2pix); "
                   f"repeat to offer several (default: {defaults.EDITOR})")
    p.add_argument("--model", default=None, help="Hugging Face id or folder of the (single) editor's weights")
    p.add_argument("--reward", default=defaults.REWARD,
                   help="world-describe (the world VLM judges the edit, as `editrl best-of-n` by default), world (the "
                   "shipped world EditReward: rejects deletions, still weak on fine errors), world-verifier, oracle, http(s)://host:port of "
                   f"`editrl reward serve`, or an EditReward folder / Hub id (default: {defaults.REWARD})")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--examples", type=int, default=6, help="world examples offered on the page, the first preloaded: "
                   "`editrl best-of-n`'s built-in one (default: 6)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--share", type=_flag, default=False, metavar="{true,false}",
                   help="also open a public gradio.live link (needs internet; default: false)")
    p.set_defaults(func=run)


def page(args: argparse.Namespace):
    """The Blocks ``editrl demo`` serves for ``args``: the editors and reward loaded, the world examples offered.
    Every name is checked before any model is loaded (or gradio imported)."""
    from ..reward.specs import build_reward, check_reward_spec

    names = args.editor or [defaults.EDITOR]
    if args.model is not None and len(names) > 1:
        raise EditRLError("--model: applies to one editor; pass a single --editor with it")
    check_reward_spec(args.reward, "--reward")  # every name before any model is loaded (or gradio imported)
    from ..sampler.editors import check_editor, load_editor

    for name in names:
        check_editor(name, args.model)
    from ..demo import build_demo, world_examples

    editors = {name: load_editor(name, model=args.model, device=args.device) for name in names}
    return build_demo(editors, build_reward(args.reward, device=args.device), world_examples(args.examples))


def run(args: argparse.Namespace) -> int:
    """Serve the page until Ctrl+C. Without -v the page's own HTTP requests (httpx, one INFO line per request that
    gradio makes to itself) are not logged: only warnings and the one line with the address."""
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    blocks = page(args)  # checks every name before editrl.demo (gradio, torch) is imported
    from ..demo import launch

    launch(blocks, host=args.host, port=args.port, share=args.share)
    return 0
