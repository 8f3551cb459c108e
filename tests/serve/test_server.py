"""The reward server on loopback: concurrent clients, bad requests, limits, auth, metrics."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch
from PIL import Image

from editrl.errors import EditRLError
from editrl.reward.client import RemoteReward, encode_image
from editrl.reward.serve import ServeConfig, serve_in_thread
from tests.serve.conftest import ToyReward, random_image


def assert_same(a, b) -> None:
    assert a.dimensions == b.dimensions
    for key in ("mu", "sigma", "score", "score_sigma"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key


def item(seed: int, instruction: str = "make the sky red") -> dict:
    return {"source": encode_image(random_image(seed)), "instruction": instruction, "edit": encode_image(random_image(seed + 1000))}


def test_concurrent_clients_match_in_process_scoring(toy_reward):
    reference = ToyReward()
    config = ServeConfig(port=0, max_batch=8, max_wait_ms=20)
    with serve_in_thread(toy_reward, config) as url:
        def worker(client_id: int) -> None:
            with RemoteReward(url, request_items=3) as remote:
                for r in range(4):
                    n = 1 + (client_id + r) % 5
                    seeds = [client_id * 100 + r * 10 + k for k in range(n)]
                    sources = [random_image(s) for s in seeds]
                    edits = [random_image(s + 1) for s in seeds]
                    instructions = ["x" * (1 + s % 13) for s in seeds]
                    got = remote.score(sources, instructions, edits)
                    assert_same(got, reference.score(sources, instructions, edits))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(worker, range(16)))  # re-raises any assertion of a worker
        metrics = httpx.get(f"{url}/metrics").json()
    total_items = sum(1 + (c + r) % 5 for c in range(16) for r in range(4))
    assert metrics["items"] == total_items == sum(toy_reward.batch_sizes)
    assert metrics["responses"]["200"] == metrics["requests"]
    assert max(toy_reward.batch_sizes) <= 8
    # concurrent requests share forward passes
    assert metrics["batches"] < metrics["requests"] and metrics["mean_batch_size"] > 1
    assert metrics["latency_seconds"]["p50"] > 0


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _post(url: str, body, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/score", json=body, timeout=30, **kwargs)


def test_bad_requests_get_clear_4xx_and_server_keeps_answering(toy_reward, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    random_image(1).save(root / "a.png")
    random_image(2).save(tmp_path / "outside.png")
    os.symlink(tmp_path / "outside.png", root / "link.png")
    config = ServeConfig(port=0, max_request_items=4, max_image_pixels=40 * 40, max_request_bytes=200_000, image_root=str(root))
    good = item(5)
    big = base64.b64encode(_png_bytes(random_image(3, size=64))).decode()
    not_image = base64.b64encode(b"hello, not an image").decode()
    cases = [
        ({**good, "edit": "@@not base64@@"}, 400, "items[0].edit: not valid base64"),
        ({**good, "edit": not_image}, 400, "items[0].edit: not a readable"),
        ({**good, "instruction": 7}, 422, "items[0].instruction"),
        ({**good, "instruction": "   "}, 422, "items[0].instruction: expected a non-empty instruction string, got '   '"),
        ({**good, "extra": 1}, 422, "items[0].extra: unknown field"),
        ({**good, "source": {"path": "../outside.png"}}, 403, "outside the server's image root"),
        ({**good, "source": {"path": str(tmp_path / "outside.png")}}, 403, "outside the server's image root"),
        ({**good, "source": {"path": "link.png"}}, 403, "outside the server's image root"),
        ({**good, "source": {"path": "missing.png"}}, 400, "no image file"),
        ({**good, "source": {"path": "a.png", "mode": "r"}}, 422, "unknown field"),
        ({**good, "edit": big}, 413, "exceeds the server's limit of 1600 pixels"),
    ]
    with serve_in_thread(toy_reward, config) as url:
        for bad_item, status, message in cases:
            response = _post(url, {"items": [bad_item]})
            assert response.status_code == status, (bad_item.keys(), response.text)
            assert message in response.json()["detail"], response.json()
        # JSON may escape a lone surrogate; the same check as the CLI's names the field before any tokenizer
        raw = json.dumps({"items": [good, {**good, "instruction": "make it \ud800 red"}]}).encode()
        assert b"\\ud800" in raw
        response = httpx.post(f"{url}/v1/score", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422 and response.json()["detail"] == (
            "items[1].instruction: not valid Unicode text (a lone surrogate '\\ud800' at character 9); fix the text's encoding")
        thin = base64.b64encode(_png_bytes(Image.new("RGB", (1000, 1)))).decode()  # 1000 pixels: under the limit, but a strip
        response = _post(url, {"items": [good] * 3 + [{**good, "edit": thin}]})
        assert response.status_code == 400 and response.json()["detail"] == (
            "items[3].edit: a 1000x1 image; its long side may be at most 200 times its short side")
        response = _post(url, {"items": [good], "temperature": 1})
        assert response.status_code == 422 and "temperature: unknown field" in response.json()["detail"]
        response = _post(url, {"items": [good] * 5})
        assert response.status_code == 413 and "5 items exceed" in response.json()["detail"]
        response = _post(url, {"items": []})
        assert response.status_code == 422
        response = httpx.post(f"{url}/v1/score", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 422
        response = httpx.post(f"{url}/v1/score", content=b"0" * 300_000, headers={"content-type": "application/json"})
        assert response.status_code == 413 and "exceeds the server's limit of 200000 bytes" in response.json()["detail"]
        chunked = httpx.post(f"{url}/v1/score", content=(b"0" * 50_000 for _ in range(6)), headers={"content-type": "application/json"})
        assert "content-length" not in chunked.request.headers
        assert chunked.status_code == 413 and "more than 200000 bytes" in chunked.json()["detail"]
        # a path under the root works and scores the file's pixels
        ok = _post(url, {"items": [{**good, "source": {"path": "a.png"}}]})
        assert ok.status_code == 200
        expected = ToyReward().score([random_image(1)], [good["instruction"]], [random_image(1005)])
        assert ok.json()["results"][0]["score"] == float(expected.score[0])
        # still healthy and answering after all of that, and the bad requests scored nothing
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        assert _post(url, {"items": [good]}).status_code == 200
        assert toy_reward.calls == 2


def _png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_token_required(toy_reward):
    with serve_in_thread(toy_reward, ServeConfig(port=0, token="s3cret")) as url:
        assert _post(url, {"items": [item(1)]}).status_code == 401
        wrong = _post(url, {"items": [item(1)]}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "bearer token" in wrong.json()["detail"]
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert httpx.get(f"{url}/health").status_code == 200
        with pytest.raises(EditRLError, match="401"):
            RemoteReward(url, retries=0).score([random_image(1)], ["a"], [random_image(2)])
        out = RemoteReward(url, token="s3cret").score([random_image(1)], ["a"], [random_image(2)])
        assert_same(out, ToyReward().score([random_image(1)], ["a"], [random_image(2)]))


def test_queue_full_gives_503_then_recovers():
    gate = threading.Event()
    reward = ToyReward(gate=gate)
    config = ServeConfig(port=0, max_batch=1, max_wait_ms=0, max_queue=2)
    with serve_in_thread(reward, config) as url, ThreadPoolExecutor(4) as pool:
        try:
            first = pool.submit(_post, url, {"items": [item(1)]})
            assert reward.entered.wait(20)  # the worker holds it, blocked on the gate
            waiting = pool.submit(_post, url, {"items": [item(2), item(3)]})  # fills the queue
            wait_until(lambda: httpx.get(f"{url}/metrics").json()["queue_depth"] == 2)
            full = _post(url, {"items": [item(4)]})
            assert full.status_code == 503 and "queue is full" in full.json()["detail"]
            assert full.headers["retry-after"] == "1"
        finally:
            gate.set()
        assert first.result().status_code == 200 and waiting.result().status_code == 200
        assert _post(url, {"items": [item(4)]}).status_code == 200
        assert httpx.get(f"{url}/metrics").json()["responses"] == {"200": 3, "503": 1}


def test_client_retries_on_503_and_connection_errors():
    gate = threading.Event()
    reward = ToyReward(gate=gate)
    config = ServeConfig(port=0, max_batch=1, max_wait_ms=0, max_queue=1)
    with serve_in_thread(reward, config) as url, ThreadPoolExecutor(2) as pool:
        opener = threading.Timer(0.3, gate.set)
        try:
            first = pool.submit(_post, url, {"items": [item(1)]})
            assert reward.entered.wait(20)
            second = pool.submit(_post, url, {"items": [item(2)]})
            wait_until(lambda: httpx.get(f"{url}/metrics").json()["queue_depth"] == 1)
            # the queue is full now: the client backs off and gets through once the gate opens
            opener.start()
            out = RemoteReward(url, retries=6, backoff=0.1).score([random_image(1)], ["a"], [random_image(2)])
        finally:
            opener.cancel()
            gate.set()
        assert_same(out, ToyReward().score([random_image(1)], ["a"], [random_image(2)]))
        assert first.result().status_code == second.result().status_code == 200
        codes = httpx.get(f"{url}/metrics").json()["responses"]
        assert codes["503"] >= 1 and codes["200"] == 3
    with pytest.raises(EditRLError, match="failed after 2 attempts"):
        RemoteReward(url, retries=1, backoff=0.01, timeout=2).score([random_image(1)], ["a"], [random_image(2)])


def test_reward_errors_fail_only_their_request():
    class Picky(ToyReward):
        def score(self, sources, instructions, edits, batch_size=None):
            if any(t == "boom" for t in instructions):
                raise EditRLError("instructions: 'boom' is not allowed")
            return super().score(sources, instructions, edits, batch_size)

    with serve_in_thread(Picky(), ServeConfig(port=0, max_batch=4, max_wait_ms=200)) as url, ThreadPoolExecutor(2) as pool:
        bad = pool.submit(_post, url, {"items": [item(1, "boom")]})
        good = pool.submit(_post, url, {"items": [item(2, "fine")]})
        assert bad.result().status_code == 400 and "'boom' is not allowed" in bad.result().json()["detail"]
        assert good.result().status_code == 200


def test_metrics_prometheus_and_openapi(toy_reward):
    with serve_in_thread(toy_reward, ServeConfig(port=0)) as url:
        assert _post(url, {"items": [item(1), item(2)]}).status_code == 200
        text = httpx.get(f"{url}/metrics", params={"format": "prometheus"}).text
        assert "editrl_items_total 2" in text and 'editrl_responses_total{code="200"} 1' in text
        schema = httpx.get(f"{url}/openapi.json").json()
        request_schema = schema["components"]["schemas"]["ScoreRequest"]
        assert request_schema["additionalProperties"] is False and "/v1/score" in schema["paths"]


def test_default_host_is_loopback():
    assert ServeConfig().host == "127.0.0.1"
    with pytest.raises(EditRLError, match="max_batch"):
        ServeConfig(max_batch=0)


def test_tiny_edit_reward_served_under_concurrency_matches_in_process(tiny_edit_reward):
    """The real model: 16 concurrent clients, each answer equal to scoring the same items in-process
    (up to float rounding: batch composition changes padding, not the math)."""
    instructions = ["add a red circle", "make the square blue", "remove the triangle", "x"]
    with serve_in_thread(tiny_edit_reward, ServeConfig(port=0, max_batch=8, max_wait_ms=20)) as url:
        def worker(client_id: int):
            seeds = [client_id * 10 + k for k in range(1 + client_id % 3)]
            sources = [random_image(s, 48) for s in seeds]
            edits = [random_image(s + 500, 48) for s in seeds]
            texts = [instructions[s % 4] for s in seeds]
            with RemoteReward(url) as remote:
                return remote.score(sources, texts, edits), tiny_edit_reward.score(sources, texts, edits)

        with ThreadPoolExecutor(16) as pool:
            pairs = list(pool.map(worker, range(16)))
        metrics = httpx.get(f"{url}/metrics").json()
    for remote, local in pairs:
        assert remote.dimensions == local.dimensions == ("instruction_following", "visual_quality")
        for key in ("mu", "sigma", "score", "score_sigma"):
            torch.testing.assert_close(getattr(remote, key), getattr(local, key), rtol=1e-5, atol=1e-6)
    assert metrics["requests"] == 16 and metrics["mean_batch_size"] > 1


def test_cli_serves_until_terminated(tmp_path):
    """`editrl reward serve --model oracle` answers on loopback, scores like the oracle, and shuts down on SIGTERM."""
    import signal
    import socket
    import subprocess
    import sys

    from editrl.world import Oracle, make_examples

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "editrl.cli", "reward", "serve", "--reward", "oracle", "--port", str(port), "--max-batch", "4"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert process.poll() is None, process.stdout.read()
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=120)
        examples = make_examples(3, seed=0, split="test")
        args = ([e.source for e in examples], [e.instruction for e in examples], [e.target for e in examples])
        assert_same(RemoteReward(url).score(*args), Oracle().score(*args))
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in process.stdout.read()
