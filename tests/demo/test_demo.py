"""The demo's callbacks, and the page itself in a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editrl.demo import build_demo, caption, launch, run_best_of_n, score_uploads, world_examples
from editrl.errors import EditRLError
from editrl.sampler.best_of_n import best_of_n

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def expected_captions(editor, reward, source, instruction, n, seed, select="mean") -> list[str]:
    result = best_of_n(editor, reward, source, instruction, n=n, seeds=range(seed, seed + n), select=select)
    return [caption(c.rank, c.record, f"seed {c.seed}", selected=c.rank == 1) for c in result.candidates]


def test_run_best_of_n_is_best_of_n(tiny_editor, tiny_reward):
    source, instruction = world_examples(1)[0]
    gallery, best, summary, table = run_best_of_n(tiny_editor, tiny_reward, source, instruction, 3, "vq", 7)
    assert [text for _, text in gallery] == expected_captions(tiny_editor, tiny_reward, source, instruction, 3, 7, "vq")
    assert sorted(row[1] for row in table) == [7, 8, 9] and [row[0] for row in table] == [1, 2, 3]
    vq = [row[6] for row in table]  # ranked by the visual-quality mu under select="vq"
    assert vq == sorted(vq, reverse=True) and table[0][-1] == "yes"
    assert np.array_equal(np.asarray(best), np.asarray(gallery[0][0])) and summary.startswith("★ SELECTED · #1 seed")
    with pytest.raises(EditRLError, match="source image"):
        run_best_of_n(tiny_editor, tiny_reward, None, instruction, 2, "mean", 0)


def test_score_uploads_ranks_by_reward(tiny_reward, tmp_path):
    source, instruction = world_examples(1)[0]
    paths = []
    for i, color in enumerate([(255, 0, 0), (0, 0, 255), (30, 200, 30)]):
        paths.append(str(tmp_path / f"edit{i}.png"))
        Image.new("RGB", (64, 64), color).save(paths[-1])
    gallery, table = score_uploads(tiny_reward, source, instruction, paths)
    out = tiny_reward.score([source] * 3, [instruction] * 3, paths)
    order = sorted(range(3), key=lambda i: -float(out.score[i]))
    assert [row[1] for row in table] == [f"edit{i}.png" for i in order]
    assert [row[2] for row in table] == [round(float(out.score[i]), 4) for i in order]
    assert gallery[0][1].startswith("★ SELECTED · #1 edit")
    with pytest.raises(EditRLError, match="at least one"):
        score_uploads(tiny_reward, source, instruction, [])
    with pytest.raises(EditRLError, match="instruction"):
        score_uploads(tiny_reward, source, " ", paths)


def _browser_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_page_in_headless_chromium(tiny_editor, tiny_reward, tmp_path):
    """Load the page in a real browser, run best-of-3 with seed 5 and check the gallery against
    best_of_n; then score two uploads on the second tab."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')")
    browser_path = _browser_path()
    if browser_path is None:
        pytest.skip("no Chromium on this machine: install it with `apt-get install -y chromium` (see the README's demo section)")
    examples = world_examples(3)
    source, instruction = examples[0]
    demo = build_demo({"tiny-kontext": tiny_editor}, tiny_reward, examples)
    port = _free_port()
    launch(demo, port=port, block=False)
    screenshot = Path(os.environ.get("EDITRL_DEMO_SCREENSHOT", tmp_path / "demo.png"))
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            page.wait_for_selector("#run", timeout=60_000)
            assert page.input_value("#instruction textarea") == instruction
            page.fill("#n input[type=number]", "3")
            page.press("#n input[type=number]", "Enter")
            page.fill("#seed input", "5")
            page.press("#seed input", "Enter")
            page.click("#run")
            page.wait_for_function("document.querySelectorAll('#candidates .caption-label').length === 3", timeout=120_000)
            captions = page.locator("#candidates .caption-label").all_inner_texts()
            assert page.locator("#candidates img").count() == 3
            assert captions == expected_captions(tiny_editor, tiny_reward, source, instruction, 3, 5)
            page.wait_for_function("document.querySelector('#best-caption textarea').value.length > 0", timeout=30_000)
            assert page.input_value("#best-caption textarea").startswith(captions[0])
            assert page.locator("#best img").count() == 1
            page.screenshot(path=str(screenshot), full_page=True)

            page.get_by_role("tab", name="Score your edits").click()
            paths = []
            for i, color in enumerate([(200, 40, 40), (40, 40, 200)]):
                paths.append(str(tmp_path / f"mine{i}.png"))
                Image.new("RGB", (64, 64), color).save(paths[-1])
            source_path = str(tmp_path / "source.png")
            source.save(source_path)
            page.locator("#own-source input[type=file]").set_input_files(source_path)
            page.fill("#own-instruction textarea", instruction)
            page.locator("#own-edits input[type=file]").set_input_files(paths)
            page.wait_for_function("document.querySelectorAll('#own-edits .file-preview tr, #own-edits tr').length >= 2", timeout=30_000)
            page.click("#score")
            page.wait_for_function("document.querySelectorAll('#own-candidates .caption-label').length === 2", timeout=60_000)
            own = page.locator("#own-candidates .caption-label").all_inner_texts()
            expected_gallery, _ = score_uploads(tiny_reward, source, instruction, paths)
            assert own == [text for _, text in expected_gallery]
            page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-score.png")), full_page=True)
            browser.close()
    finally:
        demo.close()


@pytest.mark.slow
def test_cli_demo_matches_cli_best_of_n(tiny_editor, tmp_path):
    """`editrl demo` (own process, an editor folder, the oracle) gives the scores `editrl best-of-n`
    writes to scores.json for the same seed."""
    import json
    import subprocess
    import sys
    import time

    import httpx
    from gradio_client import Client, handle_file

    folder = tmp_path / "editor"
    tiny_editor.pipe.save_pretrained(folder)
    (folder / "editrl_editor.json").write_text(json.dumps({"resolution": 64, "default_steps": 2}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    best = subprocess.run([sys.executable, "-m", "editrl.cli", "best-of-n", "--editor", str(folder), "--reward", "oracle",
                           "--n", "3", "--seed", "4", "--out", str(tmp_path / "bon")], env=env, capture_output=True, text=True, timeout=300)
    assert best.returncode == 0, best.stderr[-2000:]
    expected = json.loads((tmp_path / "bon" / "scores.json").read_text())["candidates"]

    port = _free_port()
    demo = subprocess.Popen([sys.executable, "-m", "editrl.cli", "demo", "--editor", str(folder), "--reward", "oracle",
                             "--examples", "2", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert demo.poll() is None, demo.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the demo did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        source, instruction = world_examples(1)[0]
        source.save(tmp_path / "source.png")
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        gallery, _, summary, table = client.predict(handle_file(str(tmp_path / "source.png")), instruction, str(folder), 3, "mean",
                                                    "full", 4, api_name="/on_run")
        rows = table["data"]
        assert [row[1] for row in rows] == [c["seed"] for c in expected]
        for row, candidate in zip(rows, expected):
            assert row[3] == round(candidate["score"], 4) and row[4] == round(candidate["mu_instruction_following"], 4)
            assert row[6] == round(candidate["mu_visual_quality"], 4)
        assert len(gallery) == 3 and summary.startswith(f"★ SELECTED · #1 seed {expected[0]['seed']}")
    finally:
        demo.terminate()
        demo.wait(timeout=60)
