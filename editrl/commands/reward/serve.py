"""``editrl reward serve``: an HTTP scoring service with dynamic batching (see ``editrl.reward.serve``)."""

from __future__ import annotations

import argparse
import logging

from ...argtypes import DeprecatedFlag
from ...config import add_config_arguments, config_from_args
from ...errors import EditRLError
from ...reward.serve_config import ServeConfig

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a reward over HTTP (POST /v1/score, GET /health, /metrics, /openapi.json)",
        description="Score (source, instruction, edit) triples over HTTP with dynamic batching across "
        "concurrent requests. Binds 127.0.0.1 unless --host says otherwise.",
        epilog="""examples:
  editrl reward serve --reward world --port 8765
  editrl reward serve --chat world-vlm   # also answers POST /v1/chat/completions as the world VLM
  curl -s localhost:8765/health""",
    )
    p.add_argument("--reward", default="world",
                   help="reward: an EditReward folder or Hub id, 'world' (shipped tiny model) or 'oracle' (default: world)")
    p.add_argument("--model", dest="reward", action=DeprecatedFlag, new="--reward")
    p.add_argument("--chat", default=None, metavar="NAME",
                   help="also answer the OpenAI chat-completions protocol (/v1/chat/completions, /v1/models) with this "
                        "registered generative model, e.g. world-vlm, so a generative judge (--reward openai:...) can use it")
    p.add_argument("--device", default=None, help="device of an EditReward model (default: cuda if available, else cpu)")
    add_config_arguments(p, ServeConfig)  # one flag per ServeConfig field, with its help and default
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...reward.specs import build_reward, check_reward_spec

    config = config_from_args(ServeConfig, args, model_name=args.reward)
    check_reward_spec(args.reward, "--reward")  # before fastapi and the model load
    from ...registry import CHAT_MODELS

    if args.chat is not None and args.chat not in CHAT_MODELS:
        raise EditRLError(f"--chat {args.chat!r}: expected one of {sorted(CHAT_MODELS)}")
    from ...reward.serve import serve

    if config.host not in ("127.0.0.1", "localhost", "::1") and config.token is None:
        logger.warning("serving on %s without --token: anyone who can reach this address can use the reward", config.host)
    chat = None
    if args.chat is not None:
        chat = CHAT_MODELS[args.chat](args.device)
    serve(build_reward(args.reward, device=args.device), config, chat)
    return 0
