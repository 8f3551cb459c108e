"""Reward server memory per image pixel in flight: what ``ServeConfig.max_pixels_in_flight`` bounds.

The server (``--reward world``: the shipped tiny EditReward) runs in a fresh (spawned) process: a fork would
inherit this one's freed memory and reuse it unseen. Its scoring is held
at a gate while ``--items`` concurrent one-item requests (two random-noise PNGs of ``--side`` x ``--side``,
which PNG cannot compress: the largest request per pixel) are decoded and queued; then it is released.
For each way of sending images (base64 in the JSON body, ``{"path"}`` under ``--image-root``) it prints one
JSON line: the growth of the server's resident memory over idle while they wait (``held``) and at its peak
(``peak``, the decoding included), each divided by the declared image pixels in flight:

    python benchmarks/serve_memory.py --items 15 --side 1024

Measured on a 2-core CPU machine (31.5 Mpx in flight), three runs: images as paths hold 4.18-4.19 bytes per pixel
(4.22-4.23 at the peak), as base64 6.9-7.9 (8.3-8.8 at the peak), the documented figures of
``ServeConfig.max_pixels_in_flight``. The
4 bytes are Pillow's RGB; the rest with base64 is decoding buffers that glibc's malloc keeps for reuse (run with
``MALLOC_MMAP_THRESHOLD_=262144`` and base64 holds 4.14, 5.99 at the peak).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def memory(pid: int) -> dict[str, int]:
    """Resident and peak resident bytes of process ``pid``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


class Gated:
    """A reward whose ``score`` waits for ``gate`` (so items stay in flight) and says when it is waiting."""

    def __init__(self, reward, gate, waiting) -> None:
        self.reward, self.gate, self.waiting = reward, gate, waiting

    def identity(self) -> dict:
        from editrl.reward.identity import reward_identity

        return reward_identity(self.reward)

    def score(self, *args, **kwargs):
        self.waiting.set()
        self.gate.wait()
        return self.reward.score(*args, **kwargs)


def _serve(reward_spec: str, root: str, urls, gate, waiting, stop) -> None:
    """The server process: one item per batch (so the queue depth tells how many items wait)."""
    from editrl.reward.serve import ServeConfig, serve_in_thread
    from editrl.reward.specs import build_reward

    reward = Gated(build_reward(reward_spec), gate, waiting)
    with serve_in_thread(reward, ServeConfig(port=0, max_batch=1, max_wait_ms=0, image_root=root)) as url:
        urls.put(url)
        stop.wait()


def _wait(condition, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def noise_png(rng: np.random.Generator, side: int) -> bytes:
    """A PNG of random RGB noise (about 3 bytes per pixel: PNG cannot compress it)."""
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def measure(reward: str, items: int, side: int, encoding: str) -> dict:
    with tempfile.TemporaryDirectory() as root:
        return _measure(reward, items, side, encoding, root)


def _measure(reward: str, items: int, side: int, encoding: str, root: str) -> dict:
    rng = np.random.default_rng(0)
    images = []
    for i in range(2 * items):
        png = noise_png(rng, side)
        (Path(root) / f"{i}.png").write_bytes(png)
        images.append(base64.b64encode(png).decode() if encoding == "base64" else {"path": f"{i}.png"})
    spawn = multiprocessing.get_context("spawn")
    urls, gate, waiting, stop = spawn.Queue(), spawn.Event(), spawn.Event(), spawn.Event()
    gate.set()
    server = spawn.Process(target=_serve, args=(reward, root, urls, gate, waiting, stop), daemon=True)
    server.start()
    url = urls.get(timeout=600)
    body = lambda k: {"items": [{"source": images[2 * k], "instruction": "add a red circle", "edit": images[2 * k + 1]}]}  # noqa: E731
    with httpx.Client(base_url=url, timeout=600) as client:
        tiny = base64.b64encode(noise_png(rng, 64)).decode()  # one small request first: idle is after warm-up
        assert client.post("/v1/score", json={"items": [{"source": tiny, "instruction": "x", "edit": tiny}]}).status_code == 200
        time.sleep(0.5)
        idle = memory(server.pid)
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # the peak (VmHWM) restarts from idle
        gate.clear()
        waiting.clear()
        with ThreadPoolExecutor(items) as pool:
            answers = [pool.submit(client.post, "/v1/score", json=body(k)) for k in range(items)]
            _wait(lambda: waiting.is_set() and client.get("/metrics").json()["queue_depth"] == items - 1, "every item to be queued")
            time.sleep(0.5)
            held = memory(server.pid)
            gate.set()
            codes = [answer.result().status_code for answer in answers]
        after = memory(server.pid)
    stop.set()
    server.join(timeout=60)
    pixels = 2 * items * side * side
    body_bytes = sum(len(json.dumps(body(k))) for k in range(items))
    return {
        "benchmark": "serve_memory", "reward": reward, "encoding": encoding, "items": items, "images_per_item": 2,
        "side": side, "pixels_in_flight": pixels, "request_body_bytes": body_bytes, "answers": sorted(set(codes)),
        "idle_rss_bytes": idle["VmRSS"], "held_over_idle_bytes": held["VmRSS"] - idle["VmRSS"],
        "peak_over_idle_bytes": after["VmHWM"] - idle["VmRSS"], "after_over_idle_bytes": after["VmRSS"] - idle["VmRSS"],
        "held_bytes_per_pixel": round((held["VmRSS"] - idle["VmRSS"]) / pixels, 2),
        "peak_bytes_per_pixel": round((after["VmHWM"] - idle["VmRSS"]) / pixels, 2),
        "body_bytes_per_pixel": round(body_bytes / pixels, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reward", default="world", help="reward spec the server holds (default: world)")
    parser.add_argument("--items", type=int, default=15, help="one-item requests in flight at once")
    parser.add_argument("--side", type=int, default=1024, help="image side in pixels (two images per item)")
    args = parser.parse_args()
    for encoding in ("base64", "path"):
        print(json.dumps(measure(args.reward, args.items, args.side, encoding)), flush=True)


if __name__ == "__main__":
    main()
