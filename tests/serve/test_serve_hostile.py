"""A hostile client on loopback, in bounded loops: malformed, oversized, slow and concurrent requests.
Every answer is the specified 4xx or 2xx, the server keeps answering, /metrics counts every answer,
and its memory stays bounded."""

from __future__ import annotations

import base64
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1]))
from hostile_cases import bomb_png, png_bytes  # noqa: E402

from editrl.reward.serve import ServeConfig, serve_in_thread  # noqa: E402

from .conftest import random_image  # noqa: E402

RSS_BOUND_MB = 400  # growth allowed over the whole suite (one 2048x2048 RGB image is 12 MB)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def item(source, edit, instruction="make it red"):
    return {"source": source, "instruction": instruction, "edit": edit}


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_hostile_requests_get_4xx_and_the_server_keeps_answering(toy_reward, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    random_image(1).save(root / "ok.png")
    (root / "big.bin").write_bytes(b"\0" * 5000)
    good = b64(png_bytes(random_image(2)))
    config = ServeConfig(port=0, token="t0k", image_root=str(root), max_image_pixels=256 * 256, max_request_bytes=64 * 1024,
                         max_pixels_in_flight=8 * 256 * 256)
    cases = [  # (body, headers, status, text in the detail)
        ({"items": [item(good, good)]}, {}, 401, "bearer token"),
        ("{not json", {}, 401, "bearer token"),  # the token is checked before the body is parsed
        ("{not json", None, 422, ""),
        ({"items": [item({"path": "ok\x00.png"}, good)]}, None, 400, "NUL byte"),
        ({"items": [item({"path": "../../etc/passwd"}, good)]}, None, 403, "outside the server's image root"),
        ({"items": [item({"path": "big.bin"}, good)]}, None, 400, "not a readable"),
        ({"items": [item(b64(bomb_png()), good)]}, None, 413, "limit of 65536 pixels"),
        ({"items": [item(b64(png_bytes(Image.new("RGB", (300, 300)))), good)]}, None, 413, "300x300 image exceeds"),
        ({"items": [item(good, b64(b"\x89PNG\r\n\x1a\n garbage"))]}, None, 400, "not a readable"),
        ({"items": [item(good, "!!notbase64")]}, None, 400, "not valid base64"),
        ({"items": [item(good, good, "")]}, None, 422, "non-empty instruction"),
        ({"items": [item(good, good)] * 3}, None, 200, ""),
    ]
    auth = {"Authorization": "Bearer t0k"}
    with serve_in_thread(toy_reward, config) as url, httpx.Client(base_url=url, timeout=30) as client:
        for body, headers, status, text in cases:
            headers = auth if headers is None else headers
            response = (client.post("/v1/score", json=body, headers=headers) if isinstance(body, dict)
                        else client.post("/v1/score", content=body, headers={**headers, "Content-Type": "application/json"}))
            assert response.status_code == status, (body if isinstance(body, str) else status, response.text)
            assert text in response.text
        huge = client.post("/v1/score", content=b"x" * 100000, headers=auth)
        assert huge.status_code == 413
        codes = client.get("/metrics", headers=auth).json()["responses"]
        assert sum(codes.values()) == len(cases) + 1 and "500" not in codes
        assert client.get("/health").json()["status"] == "ok"


def test_slow_clients_are_cut_off(toy_reward):
    config = ServeConfig(port=0, header_timeout_s=0.5, body_timeout_s=0.5, keep_alive_s=0.5)
    with serve_in_thread(toy_reward, config) as url:
        host, port = url.removeprefix("http://").split(":")
        started = time.monotonic()
        with socket.create_connection((host, int(port)), timeout=10) as slow_head:
            slow_head.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\n")  # ... and never finishes the head
            assert slow_head.recv(100) == b""  # the server hangs up
        assert time.monotonic() - started < 5
        with socket.create_connection((host, int(port)), timeout=10) as slow_body:
            slow_body.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            answer = slow_body.recv(1000)
            assert answer.startswith(b"HTTP/1.1 408")
        assert httpx.get(f"{url}/health").status_code == 200


def test_concurrent_big_requests_keep_memory_bounded(toy_reward):
    """16 clients x 4 rounds of 8 images of 1024x1024: at most max_pixels_in_flight are decoded at once
    (the others get 503 and retry), every answer is 200 or 503, and RSS stays under the bound."""
    big = b64(png_bytes(Image.fromarray(np.tile(np.arange(1024, dtype=np.uint8)[:, None, None], (1, 1024, 3)))))  # 1 Mpx, small file
    config = ServeConfig(port=0, max_pixels_in_flight=8 * 1024 * 1024, max_request_bytes=64 * 1024 * 1024)
    start = rss_mb()
    with serve_in_thread(toy_reward, config) as url:
        def client(seed: int) -> list[int]:
            with httpx.Client(base_url=url, timeout=120) as c:
                return [c.post("/v1/score", json={"items": [item(big, big)] * 4}).status_code for _ in range(4)]

        with ThreadPoolExecutor(16) as pool:
            codes = [code for codes in pool.map(client, range(16)) for code in codes]
        assert set(codes) <= {200, 503} and codes.count(200) >= 4
        assert httpx.get(f"{url}/health").status_code == 200
        too_big = httpx.post(f"{url}/v1/score", json={"items": [item(big, big)] * 5}, timeout=60)
        assert too_big.status_code == 413 and "in flight" in too_big.text
    assert rss_mb() - start < RSS_BOUND_MB


@pytest.mark.parametrize("bad", [{"port": 70000}, {"max_pixels_in_flight": 0}, {"body_timeout_s": 0}])
def test_config_refuses_bad_values(bad):
    from editrl.errors import EditRLError

    with pytest.raises(EditRLError, match=next(iter(bad))):
        ServeConfig(**bad)


def test_port_in_use_is_one_line(toy_reward):
    from editrl.errors import EditRLError

    with serve_in_thread(toy_reward, ServeConfig(port=0)) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(EditRLError, match=rf"^reward serve: cannot listen on 127.0.0.1:{port} \(Address already in use\)$"):
            with serve_in_thread(toy_reward, ServeConfig(port=port)):
                pass


def test_admission_counts_both_images_of_every_item_and_decoding_keeps_no_encoded_copy():
    """``max_pixels_in_flight`` counts the declared pixels of the source and the edit of every item; once a
    request is decoded neither it nor its images hold the base64 text or the encoded bytes, so what stays
    in flight per pixel is the decoded image alone (benchmarks/serve_memory.py measures the bytes)."""
    import gc
    import tracemalloc

    from fastapi import HTTPException

    from editrl.reward.serve import PixelBudget, ScoreRequest, decode_request, request_pixels

    config = ServeConfig()
    noise = lambda seed, side: b64(png_bytes(random_image(seed, side)))  # noqa: E731 - incompressible: PNG ~ 3 bytes per pixel
    body = {"items": [item(noise(1, 300), noise(2, 400)), item(noise(3, 500), noise(4, 600), "make it blue")]}
    request = ScoreRequest.model_validate(body)
    pixels = request_pixels(request, config)
    assert pixels == 300**2 + 400**2 + 500**2 + 600**2
    budget = PixelBudget(pixels - 1)
    with pytest.raises(HTTPException, match=f"hold {pixels} pixels, over the server's limit of {pixels - 1}") as refused:
        with budget.hold(pixels):
            pass
    assert refused.value.status_code == 413 and budget.used == 0
    encoded = sum(len(value) for it in body["items"] for value in (it["source"], it["edit"]))
    del body
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sources, instructions, edits = decode_request(request, config)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert request.items == [] and instructions == ["make it red", "make it blue"]
    assert [im.size for im in sources + edits] == [(300, 300), (500, 500), (400, 400), (600, 600)]
    assert kept < 0.05 * encoded, (kept, encoded)  # before: every decoded PNG kept its encoded bytes (0.75 of the base64)
