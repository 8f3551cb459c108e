"""``editrl reward serve``: an HTTP scoring service with dynamic batching (see ``editrl.reward.serve``)."""

from __future__ import annotations

import argparse
import logging

from ...argtypes import nonnegative_float, port, positive_int

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a reward over HTTP (POST /v1/score, GET /health, /metrics, /openapi.json)",
        description="Score (source, instruction, edit) triples over HTTP with dynamic batching across "
        "concurrent requests. Binds 127.0.0.1 unless --host says otherwise.",
        epilog="""examples:
  editrl reward serve --model world --port 8765
  curl -s localhost:8765/health""",
    )
    p.defer(_add_arguments)  # the defaults live in ServeConfig, whose module imports fastapi and torch
    p.set_defaults(func=run)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from ...reward.serve import ServeConfig

    d = ServeConfig()
    p.add_argument("--model", default="world",
                   help="reward: an EditReward folder or Hub id, 'world' (shipped tiny model) or 'oracle' (default: world)")
    p.add_argument("--host", default=d.host, help=f"interface to bind (default: {d.host})")
    p.add_argument("--port", type=port, default=d.port, help=f"TCP port (default: {d.port})")
    p.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' on /v1/score and /metrics")
    p.add_argument("--max-batch", type=positive_int, default=d.max_batch, help=f"most items per forward call (default: {d.max_batch})")
    p.add_argument("--max-wait-ms", type=nonnegative_float, default=d.max_wait_ms,
                   help=f"longest wait for a batch to fill, in ms (default: {d.max_wait_ms})")
    p.add_argument("--max-queue", type=positive_int, default=d.max_queue,
                   help=f"most items waiting; more gets 503 (default: {d.max_queue})")
    p.add_argument("--max-request-items", type=positive_int, default=d.max_request_items,
                   help=f"most items per request; more gets 413 (default: {d.max_request_items})")
    p.add_argument("--max-image-pixels", type=positive_int, default=d.max_image_pixels,
                   help=f"most pixels per image; more gets 413 (default: {d.max_image_pixels})")
    p.add_argument("--max-request-bytes", type=positive_int, default=d.max_request_bytes,
                   help=f"largest request body; more gets 413 (default: {d.max_request_bytes})")
    p.add_argument("--image-root", default=None,
                   help="folder whose files requests may name as {'path': ...}; paths are refused without it")


def run(args: argparse.Namespace) -> int:
    from ...reward.serve import ServeConfig, serve
    from ...reward.specs import build_reward

    config = ServeConfig(
        host=args.host, port=args.port, token=args.token, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue, max_request_items=args.max_request_items, max_image_pixels=args.max_image_pixels,
        max_request_bytes=args.max_request_bytes, image_root=args.image_root, model_name=args.model,
    )
    if config.host not in ("127.0.0.1", "localhost", "::1") and config.token is None:
        logger.warning("serving on %s without --token: anyone who can reach this address can use the reward", config.host)
    serve(build_reward(args.model), config)
    return 0
