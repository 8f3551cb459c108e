"""Reward server throughput and latency under concurrent clients, on loopback.

Serves a tiny random-weight EditReward (the real class) in-process with uvicorn on 127.0.0.1 and
drives it with C client threads, each sending R one-item requests through ``RemoteReward``. Runs
twice — dynamic batching (``--max-batch``) and no batching (max_batch=1) — and prints one JSON line
per setting plus the throughput ratio:

    python benchmarks/reward_server.py --clients 16 --requests 20
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import torch
from PIL import Image

from editrl.reward.client import RemoteReward
from editrl.reward.model import EditReward, EditRewardConfig
from editrl.reward.serve import ServeConfig, serve_in_thread
from editrl.tiny import tiny_qwen25vl


def run(reward, clients: int, requests: int, max_batch: int, max_wait_ms: float, size: int) -> dict:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(2 * clients)]
    config = ServeConfig(port=0, max_batch=max_batch, max_wait_ms=max_wait_ms)
    with serve_in_thread(reward, config) as url:
        def client(c: int) -> list[float]:
            latencies = []
            with RemoteReward(url) as remote:
                remote.score([images[c]], ["add a red circle"], [images[clients + c]])  # warm-up
                for _ in range(requests):
                    start = time.perf_counter()
                    remote.score([images[c]], ["add a red circle"], [images[clients + c]])
                    latencies.append(time.perf_counter() - start)
            return latencies

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            latencies = np.concatenate([np.asarray(x) for x in pool.map(client, range(clients))])
        elapsed = time.perf_counter() - start
        metrics = httpx.get(f"{url}/metrics").json()
    return {
        "benchmark": "reward_server", "model": "tiny EditReward (Qwen2.5-VL, hidden 32)", "image_size": size,
        "clients": clients, "requests_per_client": requests, "max_batch": max_batch, "max_wait_ms": max_wait_ms,
        "requests_per_s": round(clients * requests / elapsed, 2),
        "p50_ms": round(float(np.quantile(latencies, 0.5)) * 1000, 2),
        "p99_ms": round(float(np.quantile(latencies, 0.99)) * 1000, 2),
        "mean_batch_size": round(metrics["mean_batch_size"], 2),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per client (after one warm-up)")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    args = parser.parse_args()

    backbone, processor = tiny_qwen25vl(0, extra_special_tokens=["<|Reward|>"])
    reward = EditReward.from_backbone(backbone, processor, EditRewardConfig(templates="world", min_pixels=56 * 56, max_pixels=56 * 56)).eval()
    batched = run(reward, args.clients, args.requests, args.max_batch, args.max_wait_ms, args.size)
    print(json.dumps(batched), flush=True)
    unbatched = run(reward, args.clients, args.requests, 1, 0.0, args.size)
    print(json.dumps(unbatched), flush=True)
    print(json.dumps({"benchmark": "reward_server_batching_speedup",
                      "requests_per_s_ratio": round(batched["requests_per_s"] / unbatched["requests_per_s"], 2)}))


if __name__ == "__main__":
    main()
