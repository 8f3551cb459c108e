"""EditReward scoring speed: the official two-pass path against the shared-prefix fast path, in one run.

Prints JSON lines: the setup, then per path the edited images per second, then their ratio and the
largest score difference between the paths.

    python benchmarks/reward_scoring.py                          # CPU, a small random Qwen2.5-VL
    python benchmarks/reward_scoring.py --device cuda --size 7b  # Qwen2.5-VL-7B sizes, random bf16 weights on the GPU

Random weights make the timing meaningful (the compute does not depend on the values) but not the
scores. The byte-level tokenizer spends one token per character, so at 7B size the prompts are
replaced by texts of about the token count the official prompts have with Qwen's tokenizer (the
shared start, then ``--prompt-tokens`` characters per dimension), keeping the sequence lengths
realistic.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sizes import QWEN25VL, editreward, realistic_templates

from editrl.images import load_image
from editrl.reward.inputs import common_prefix_length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="cpu", choices=("cpu", "7b"), help="backbone size (7b: Qwen2.5-VL-7B, bf16)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--items", type=int, default=16, help="edited images scored per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=None, help="side of the square test images (default: 448 at 7b, 224 on cpu)")
    parser.add_argument("--pixels", type=int, default=None, help="smart_resize min = max pixels (default: official 200704 at 7b, 50176 on cpu)")
    parser.add_argument("--layers", type=int, default=None,
                        help="keep only this many text and vision layers (a quick check of the 7b code path)")
    parser.add_argument("--prompt-tokens", type=int, default=500, help="dimension prompt length in tokens for the realistic templates")
    parser.add_argument("--templates", default="realistic", choices=("realistic", "editreward", "world"),
                        help="realistic: official structure at Qwen token counts; editreward: the official strings byte by byte")
    args = parser.parse_args()

    big = args.size == "7b"
    dtype = torch.bfloat16 if big else torch.float32
    pixels = args.pixels or (200704 if big else 224 * 224)
    side = args.image_size or (448 if big else 224)
    torch.manual_seed(0)
    size = QWEN25VL["7b" if big else "small"]
    if args.layers:
        size = {**size, "text": {**size["text"], "num_hidden_layers": args.layers},
                "vision": {**size["vision"], "depth": args.layers, "fullatt_block_indexes": [args.layers - 1]}}
    templates = realistic_templates(args.prompt_tokens) if args.templates == "realistic" else args.templates
    reward = editreward(size, args.device, dtype, pixels, templates)

    rng = np.random.default_rng(0)
    sources = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(args.items)]
    edits = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(args.items)]
    instructions = [f"replace the {w} with a red bicycle and keep the background" for w in ("car", "dog", "tree", "lamp")] * (args.items // 4 + 1)
    instructions = instructions[: args.items]
    first = reward.inputs.sequences(instructions[:1], reward.inputs.images([load_image(sources[0]), load_image(edits[0])]))
    print(json.dumps({"setup": {"device": args.device, "size": args.size, "dtype": str(dtype), "batch_size": args.batch_size,
                                "items": args.items, "layers": size["text"]["num_hidden_layers"], "image": f"{side}x{side}", "pixels": pixels, "templates": args.templates,
                                "sequence_tokens": [len(first[d][0]) for d in range(2)],
                                "shared_prefix_tokens": common_prefix_length(first[0][0], first[1][0]),
                                "threads": torch.get_num_threads()}}))

    paths = {"two_pass": (False, "stock"), "fast_stock_vision": (True, "stock"), "fast": (True, "packed")}

    def run(name: str):
        fast, reward.config.vision_attention = paths[name]
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = reward.score(sources, instructions, edits, batch_size=args.batch_size, fast=fast)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start, out

    for name, (fast, vision) in paths.items():  # warm-up
        reward.config.vision_attention = vision
        reward.score(sources[: args.batch_size], instructions[: args.batch_size], edits[: args.batch_size], batch_size=args.batch_size, fast=fast)
    times = {name: [] for name in paths}
    outputs = {}
    for _ in range(args.repeats):  # interleaved, best of the repeats: robust to a busy machine
        for name in paths:
            seconds, outputs[name] = run(name)
            times[name].append(seconds)
    rates = {name: args.items / min(t) for name, t in times.items()}
    for name, rate in rates.items():
        print(json.dumps({"path": name, "images_per_s": round(rate, 3)}))
    two_pass_rate, fast_rate = rates["two_pass"], rates["fast"]
    two_pass, fast = outputs["two_pass"], outputs["fast"]
    print(json.dumps({"speedup": round(fast_rate / two_pass_rate, 3),
                      "speedup_stock_vision": round(rates["fast_stock_vision"] / two_pass_rate, 3),
                      "max_abs_mu_diff": float((fast.mu - two_pass.mu).abs().max()),
                      "max_abs_score_diff": float((fast.score - two_pass.score).abs().max())}))


if __name__ == "__main__":
    main()
