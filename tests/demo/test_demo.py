"""The demo's callbacks, and the page itself in a real headless Chromium."""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from editrl.demo import (
    build_demo,
    caption,
    cli_advice,
    launch,
    page_advice,
    rule_labels,
    run_best_of_n,
    score_uploads,
    toast_text,
    world_examples,
    world_notes,
)
from editrl.errors import EditRLError
from editrl.images import load_image
from editrl.reward.output import RewardOutput
from editrl.sampler.best_of_n import best_of_n
from editrl.sampler.contact_sheet import BEST
from editrl.sampler.editors import FluxKontextEditor

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def expected_captions(editor, reward, source, instruction, n, seed, select="fused") -> list[str]:
    result = best_of_n(editor, reward, source, instruction, n=n, seeds=range(seed, seed + n), select=select)
    return [caption(c.rank, c.record, f"seed {c.seed}", c.rank == 1, c.pruned_at) for c in result.candidates]


def assert_same_captions(got: list[str], expected: list[str]) -> None:
    """Same words and ranks; the 4-decimal numbers within 2e-4 (the page's server thread may sum in
    another order than the test's call, which moves the last printed digit)."""
    number = r"-?\d+\.\d{4}"
    assert [re.sub(number, "#", t) for t in got] == [re.sub(number, "#", t) for t in expected]
    for g, e in zip(got, expected):
        assert np.allclose([float(x) for x in re.findall(number, g)], [float(x) for x in re.findall(number, e)], atol=2e-4)


def captions_of(cards: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<figcaption>(.*?)</figcaption>", cards)]


def test_run_best_of_n_is_best_of_n(tiny_editor, tiny_reward):
    source, instruction = world_examples(1)[0]
    cards, best, summary, (headers, table), _ = run_best_of_n(tiny_editor, tiny_reward, source, instruction, 3, "visual_quality", 7)
    assert captions_of(cards) == expected_captions(tiny_editor, tiny_reward, source, instruction, 3, 7, "visual_quality")
    assert cards.count('class="editrl-card selected"') == 1
    assert sorted(row[1] for row in table) == [7, 8, 9] and [row[0] for row in table] == [1, 2, 3]
    vq = [row[headers.index("VQ μ")] for row in table]  # ranked by the visual-quality mu under select="vq"
    assert vq == sorted(vq, reverse=True)
    assert summary.startswith("★ SELECTED · #1 seed")
    with pytest.raises(EditRLError, match="source image"):
        run_best_of_n(tiny_editor, tiny_reward, None, instruction, 2, "fused", 0)


def test_n_above_the_maximum_is_refused_not_clamped(tiny_editor, tiny_reward):
    source, instruction = world_examples(1)[0]
    with pytest.raises(EditRLError, match=r"^N: expected 1 to 16 candidates on this page, got 64"):
        run_best_of_n(tiny_editor, tiny_reward, source, instruction, 64, "fused", 0)
    with pytest.raises(EditRLError, match="N: expected a whole number"):
        run_best_of_n(tiny_editor, tiny_reward, source, instruction, 2.5, "fused", 0)


def test_adaptive_search_on_the_page_is_the_commands(tiny_editor, tiny_reward):
    """The page's adaptive search is best_of_n(search="adaptive") with its budget: N (even 64) does not limit it,
    the NFE stays within the budget, and the summary says how many rounds ran and why it stopped."""
    from editrl.sampler.adaptive import AdaptiveConfig
    from editrl.sampler.best_of_n import best_of_n

    source, instruction = world_examples(1)[0]
    *_, summary, (headers, table), result = run_best_of_n(tiny_editor, tiny_reward, source, instruction, 64, "fused", 5,
                                                          "adaptive", budget=30)
    expected = best_of_n(tiny_editor, tiny_reward, source, instruction, n=1, seeds=[5], search="adaptive",
                         adaptive=AdaptiveConfig(budget=30))
    assert result.nfe == expected.nfe <= 30 and [c.seed for c in result.candidates] == [c.seed for c in expected.candidates]
    assert len(table) == len(expected.candidates) and min(row[1] for row in table) == 5
    assert summary.endswith(f"{len(expected.adaptive['rounds'])} rounds, stopped because {expected.adaptive['stopped_because']}")
    # "good" is typed text: empty spends the budget, a number stops there (0 too), anything else is one line
    assert result.adaptive["stopped_because"] == "budget"
    *_, stopped = run_best_of_n(tiny_editor, tiny_reward, source, instruction, 8, "fused", 5, "adaptive", budget=30,
                                good="-1e9")
    assert stopped.adaptive["stopped_because"] != "budget" and len(stopped.adaptive["rounds"]) == 1
    with pytest.raises(EditRLError, match="good: expected a number or nothing, got 'high'"):
        run_best_of_n(tiny_editor, tiny_reward, source, instruction, 8, "fused", 5, "adaptive", budget=30, good="high")


def test_reference_uploads_follow_the_source_for_an_editor_that_takes_several(tiny_editor, tiny_reward, tmp_path):
    """The page's reference images become the prompt's later sources (as `--image a --image b`): a FLUX.2 Klein editor
    gets [source, reference] exactly as best_of_n given the list; an editor of one source refuses them in one line."""
    from editrl.sampler.best_of_n import best_of_n
    from editrl.sampler.editors.flux2 import Flux2KleinEditor
    from editrl.tiny import tiny_flux2_klein

    source, instruction = world_examples(1)[0]
    reference = world_examples(2)[1][0]
    reference.save(tmp_path / "ref.png")
    klein = Flux2KleinEditor(tiny_flux2_klein(), resolution=64, default_steps=2)
    *_, result = run_best_of_n(klein, tiny_reward, source, instruction, 2, "fused", 3, references=[str(tmp_path / "ref.png")])
    expected = best_of_n(klein, tiny_reward, [source, reference], instruction, n=2, seeds=[3, 4])
    assert [c.record["score"] for c in result.candidates] == [c.record["score"] for c in expected.candidates]
    plain = best_of_n(klein, tiny_reward, source, instruction, n=2, seeds=[3, 4])
    seed_3 = [next(c for c in r.candidates if c.seed == 3).latents for r in (result, plain)]
    assert not torch.equal(*seed_3)  # the reference was used
    with pytest.raises(EditRLError, match="takes one source image per prompt, got 2"):
        run_best_of_n(tiny_editor, tiny_reward, source, instruction, 2, "fused", 0, references=[str(tmp_path / "ref.png")])


def test_pruned_candidates_are_marked_and_settings_reach_best_of_n(tiny_editor, tiny_reward):
    source, instruction = world_examples(1)[0]
    cards, _, _, (headers, table), result = run_best_of_n(
        tiny_editor, tiny_reward, source, instruction, 4, "lcb", 0, "halving", k=2.0, keep=0.5, horizon=0.5, steps=4, guidance=3.0)
    assert result.run["steps"] == 4 and result.run["guidance"] == 3.0 and result.run["k"] == 2.0
    assert result.run["halving"]["keep"] == 0.5
    pruned = [c for c in result.candidates if c.pruned_at is not None]
    assert pruned and cards.count('class="editrl-card pruned"') == len(pruned)
    assert [t for t in captions_of(cards) if t.startswith("pruned at step")] == [
        caption(c.rank, c.record, f"seed {c.seed}", False, c.pruned_at) for c in pruned]
    assert [row[-1] for row in table] == ["" if c.pruned_at is None else c.pruned_at for c in result.candidates]


def test_captions_follow_the_rewards_dimensions():
    record = {"score": 0.5, "score_sigma": 0.1, "mu_realism": 0.25, "sigma_realism": 0.125}
    assert caption(2, record, "a.png") == "#2 a.png · score 0.5000 · R μ 0.2500 σ 0.1250"


def test_a_one_dimension_reward_gets_its_own_rules(tiny_editor):
    """A custom reward with one dimension ("realism"): the page offers fused, lcb and realism, and ranking by
    realism ranks by its mu (no instruction_following / visual_quality anywhere)."""
    class Realism:
        dimensions = ("realism",)

        def score(self, sources, instructions, edits, batch_size=None):
            mu = torch.tensor([[float(np.asarray(load_image(e, "edit")).mean())] for e in edits])
            return RewardOutput(mu=mu, sigma=torch.ones_like(mu), score=mu[:, 0], score_sigma=torch.ones(len(edits)),
                                dimensions=self.dimensions)

    assert rule_labels(Realism()) == {"fused": "fused score", "lcb": "fused μ − k·σ", "realism": "realism μ"}
    source, instruction = world_examples(1)[0]
    cards, _, _, (headers, table), _ = run_best_of_n(tiny_editor, Realism(), source, instruction, 3, "realism", 0)
    assert {"R μ", "R σ"} <= set(headers) and not any(h.startswith(("IF", "VQ")) for h in headers)
    realism = [row[headers.index("R μ")] for row in table]
    assert realism == sorted(realism, reverse=True)


def test_toast_has_no_temporary_folders():
    err = EditRLError("edited image x.png: cannot read '/tmp/gradio/0a1b2c/x.png' (not an image)")
    assert toast_text(err) == "edited image x.png: cannot read x.png (not an image)"


def test_world_notes_warn_on_photos_and_unknown_instructions(tiny_editor):
    """One source of notes, worded per caller: the command line names flags, the page its own controls."""
    tiny_editor.scope = "knows only toy scenes"
    try:
        photo = Image.new("RGB", (120, 80))
        cli = world_notes(tiny_editor, photo, "paint a sunset", cli_advice())
        only_world = world_notes(tiny_editor, photo, "paint a sunset", page_advice({"world": tiny_editor}))
        assert len(cli) == 3 and "toy scenes" in cli[0] and "squashed" in cli[1] and "not one the world editor knows" in cli[2]
        assert "--editor flux-kontext" in cli[0] and "e.g. 'Put the green circle in the center.'" in cli[2]
        assert cli[1] == only_world[1] and cli[0].split(". For")[0] == only_world[0].split(". This page")[0]
        assert "start it with a real editor and reward (see the About tab)" in only_world[0]
        assert "World examples below the candidates" in only_world[2]
        assert not any("--" in note for note in only_world)
        real = FluxKontextEditor(tiny_editor.pipe, resolution=64, default_steps=2)
        assert "pick kontext in the Editor menu" in world_notes(
            tiny_editor, photo, "x", page_advice({"world": tiny_editor, "kontext": real}))[0]
        assert world_notes(tiny_editor, Image.new("RGB", (64, 64)), "Make the red ring small.", cli_advice()) == []
    finally:
        tiny_editor.scope = None


def test_a_real_editor_keeps_a_photos_aspect_ratio_on_the_page(tiny_editor, tiny_reward):
    """A FLUX.1-Kontext without a scope edits a 3:2 photo at the preferred 1248x832 scaled to its 64 px budget
    (80x48 in sides of 16), without a note."""
    photo = Image.fromarray(np.random.RandomState(0).randint(0, 255, (80, 120, 3), dtype=np.uint8))
    assert world_notes(tiny_editor, photo, "paint a sunset", page_advice({"kontext": tiny_editor})) == []
    cards, best, summary, _, result = run_best_of_n(tiny_editor, tiny_reward, photo, "paint a sunset", 2, "fused", 0)
    assert best.size == (80, 48) and {c.image.size for c in result.candidates} == {(80, 48)}


def test_score_uploads_ranks_by_reward(tiny_reward, tmp_path):
    source, instruction = world_examples(1)[0]
    paths = []
    for i, color in enumerate([(255, 0, 0), (0, 0, 255), (30, 200, 30)]):
        paths.append(str(tmp_path / f"edit{i}.png"))
        Image.new("RGB", (64, 64), color).save(paths[-1])
    cards, (headers, table) = score_uploads(tiny_reward, source, instruction, paths)
    out = tiny_reward.score([source] * 3, [instruction] * 3, paths)
    order = sorted(range(3), key=lambda i: -float(out.score[i]))
    assert [row[1] for row in table] == [f"edit{i}.png" for i in order]
    assert [row[2] for row in table] == [round(float(out.score[i]), 4) for i in order]
    assert captions_of(cards)[0].startswith("★ SELECTED · #1 edit")
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


FULLY_VISIBLE_JS = """(selector) => [...document.querySelectorAll(selector)].map((img) => {
    img.scrollIntoView({block: "center"});
    const r = img.getBoundingClientRect();
    const points = [[r.left + 2, r.top + 2], [r.right - 2, r.top + 2], [r.left + 2, r.bottom - 2],
                    [r.right - 2, r.bottom - 2], [(r.left + r.right) / 2, (r.top + r.bottom) / 2]];
    return r.width > 20 && r.height > 20 && points.every(([x, y]) => document.elementFromPoint(x, y) === img);
})"""
IN_VIEWPORT_JS = """(selector) => { const r = document.querySelector(selector).getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; }"""


def page_models(tiny_editor, tiny_reward) -> tuple[str, object, object]:
    """(editor name, editor, reward) of the browser test: the tiny random ones, or for screenshots
    (EDITRL_DEMO_SCREENSHOTS set) the shipped world editor and reward, as `editrl demo` loads them by default."""
    if not os.environ.get("EDITRL_DEMO_SCREENSHOTS"):
        return "tiny-kontext", tiny_editor, tiny_reward
    from editrl import defaults
    from editrl.reward.specs import build_reward
    from editrl.sampler.editors import load_editor

    return defaults.EDITOR, load_editor(defaults.EDITOR, device="cpu"), build_reward(defaults.REWARD, device="cpu")


@pytest.mark.slow
def test_page_in_headless_chromium(tiny_editor, tiny_reward, tmp_path):
    """The page as a user at 1440x900 meets it: controls and Run above the fold; Run on the page's defaults
    (the built-in example, N = 8, seed 0) shows every candidate whole (no caption or box over any image) with the
    captions of best_of_n, the selected one framed in the contact sheet's green, a legend for the scores; the selected
    edit is on screen after the run; a bad N leaves the results in place with a short toast; then
    two of the editor's edits are uploaded and scored on the second tab. EDITRL_DEMO_SCREENSHOTS=folder
    runs it on the shipped world models and keeps the screenshots there (e.g. docs/demo)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')")
    browser_path = _browser_path()
    if browser_path is None:
        pytest.skip("no Chromium on this machine: install it with `apt-get install -y chromium` (see the README's demo section)")
    name, editor, reward = page_models(tiny_editor, tiny_reward)
    examples = world_examples(3)
    source, instruction = examples[0]
    demo = build_demo({name: editor}, reward, examples)
    port = _free_port()
    launch(demo, port=port, block=False)
    shots = Path(os.environ.get("EDITRL_DEMO_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            page.wait_for_selector("#run", timeout=60_000)
            assert page.input_value("#instruction textarea") == instruction
            for control in ("#n", "#seed", "#select", "#editor", "#run"):
                assert page.evaluate(IN_VIEWPORT_JS, control), f"{control} is not in the first 1440x900 viewport"
            assert (page.input_value("#n input"), page.input_value("#seed input")) == ("8", "0")
            page.click("#run")
            page.wait_for_function("document.querySelectorAll('#candidates-grid figcaption').length === 8", timeout=180_000)
            captions = page.locator("#candidates-grid figcaption").all_inner_texts()
            assert_same_captions(captions, expected_captions(editor, reward, source, instruction, 8, 0))
            assert page.evaluate(FULLY_VISIBLE_JS, "#candidates-grid img") == [True] * 8
            frame = page.evaluate("getComputedStyle(document.querySelector('#candidates-grid .selected')).borderTopColor")
            assert frame == "rgb({}, {}, {})".format(*BEST)
            assert page.get_by_text("Reading the scores.").first.is_visible()
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_function("document.querySelector('#best-caption textarea').value.length > 0", timeout=30_000)
            assert page.input_value("#best-caption textarea").startswith(captions[0])
            assert page.evaluate(IN_VIEWPORT_JS, "#best img"), "the selected edit is not on screen after the run"
            page.screenshot(path=str(shots / "demo-best-of-n.png"))
            page.screenshot(path=str(tmp_path / "demo-best-of-n-full.png"), full_page=True)

            page.fill("#n input", "64")
            page.click("#run")
            toast = page.get_by_text("N: expected 1 to 16 candidates on this page, got 64")
            toast.first.wait_for(timeout=30_000)
            assert page.locator("#candidates-grid figcaption").all_inner_texts() == captions
            assert page.locator("text=Error").count() == 0
            page.wait_for_timeout(1000)  # the toast slides in
            page.screenshot(path=str(shots / "demo-error.png"))
            page.locator(".toast-close").first.click()  # so that it does not cover the second tab
            toast.first.wait_for(state="detached", timeout=10_000)

            page.get_by_role("tab", name="Score your edits").click()
            paths = []
            for i, image in enumerate(editor.sample([source], instruction, [1, 2]).images):
                paths.append(str(tmp_path / f"edit{i + 1}.png"))
                image.save(paths[-1])
            source_path = str(tmp_path / "source.png")
            source.save(source_path)
            page.locator("#own-source input[type=file]").set_input_files(source_path)
            page.fill("#own-instruction textarea", instruction)
            page.locator("#own-edits input[type=file]").set_input_files(paths)
            page.wait_for_function("document.querySelectorAll('#own-edits .file-preview tr, #own-edits tr').length >= 2", timeout=30_000)
            page.click("#score")
            page.wait_for_function("document.querySelectorAll('#own-candidates-grid figcaption').length === 2", timeout=60_000)
            own = page.locator("#own-candidates-grid figcaption").all_inner_texts()
            expected_cards, _ = score_uploads(reward, source, instruction, paths)
            assert own == captions_of(expected_cards)
            assert page.evaluate(FULLY_VISIBLE_JS, "#own-candidates-grid img") == [True, True]
            page.screenshot(path=str(shots / "demo-score.png"), full_page=True)
            browser.close()
    finally:
        demo.close()


@pytest.mark.slow
def test_cli_demo_matches_cli_best_of_n(tiny_editor, tmp_path):
    """`editrl demo` (own process, an editor folder, the oracle) gives the scores `editrl best-of-n`
    writes to scores.json for the same seed, and prints its address in one line of its own."""
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
        cards, _, summary, table, _ = client.predict(handle_file(str(tmp_path / "source.png")), instruction, str(folder), 3,
                                                     "fused", "full", 4, 1.0, 0.5, 0.5, None, None, 0, "",
                                                     None, api_name="/on_run")
        rows = table["data"]
        assert [row[1] for row in rows] == [c["seed"] for c in expected]
        for row, candidate in zip(rows, expected):
            assert row[3] == round(candidate["score"], 4) and row[4] == round(candidate["mu_instruction_following"], 4)
            assert row[6] == round(candidate["mu_visual_quality"], 4)
        assert len(captions_of(cards)) == 3 and summary.startswith(f"★ SELECTED · #1 seed {expected[0]['seed']}")
    finally:
        demo.terminate()
        demo.wait(timeout=60)
    printed = demo.stdout.read()  # what the terminal shows: our address line, no request lines, no share=True hint
    assert f"editrl demo: open http://127.0.0.1:{port}/ (Ctrl+C stops it)" in printed.splitlines()
    assert "HTTP Request" not in printed and "share=True" not in printed
