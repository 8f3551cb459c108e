"""The page as `editrl demo` builds it: the same defaults as `editrl best-of-n`, its first run, its texts, its launch."""

from __future__ import annotations

import asyncio
import logging
import socket

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from editrl.cli import build_parser, main
from editrl.demo import WORLD_NOTE, address_line, build_demo, page_css, score_legend, world_examples


def run_as_the_page(demo, api_name: str, **changed):
    """Call a page event with every input at the value the page shows (the components' defaults, as a click sends
    them, through gradio's own preprocessing), except ``changed`` (by elem_id)."""
    fn = next(f for f in demo.fns.values() if f.api_name == api_name)
    inputs = [changed.get(c.elem_id, c.value) for c in fn.inputs]
    return asyncio.run(demo.process_api(block_fn=fn, inputs=inputs, state=SessionState(demo)))["data"], fn.inputs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_the_pages_first_run_keeps_an_exactly_right_edit():
    """`editrl demo` with no flags, Run clicked on what the page opens with: the built-in example of `editrl
    best-of-n`, N, seed and reward as its defaults, and the edit kept is exactly the target scene (no object lost;
    the former defaults, reward `world` on "Make the red ring small.", kept an edit that deleted the ring)."""
    from editrl.commands.demo import page
    from editrl.world.examples import builtin_example
    from editrl.world.oracle import outcome

    args = build_parser().parse_args(["demo", "--device", "cpu"])
    cli = build_parser().parse_args(["best-of-n"])
    assert (args.reward, args.editor or ["world"]) == (cli.reward, [cli.editor]) == ("world-describe", ["world"])
    demo = page(args)
    (cards, best, summary, table, notes), inputs = run_as_the_page(demo, "on_run")
    shown = {c.elem_id: c.value for c in inputs}
    example = builtin_example()
    assert (shown["instruction"], shown["n"], shown["seed"]) == (example.instruction, cli.n, cli.seed) == (
        example.instruction, 8, 0)
    assert [row[1] for row in table["data"]] and sorted(row[1] for row in table["data"]) == list(range(8))
    kept = outcome(example.target_scene, best["path"])
    assert kept.exact and not kept.lost_object
    assert summary.startswith(f"★ SELECTED · #1 seed {table['data'][0][1]}") and notes == ""


def test_about_text_once_and_a_score_legend_beside_every_score(tiny_editor, tiny_reward):
    demo = build_demo({"kontext": tiny_editor}, tiny_reward, world_examples(2))
    texts = [b.value or "" for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    assert sum(WORLD_NOTE in t for t in texts) == 1
    legend = score_legend(tiny_reward)
    assert texts.count(legend) == 2  # above the candidates and table of each tab that shows scores
    for words in ("fused score", "*IF μ*: instruction following", "*VQ μ*: visual quality", "*σ*: its uncertainty",
                  "negative values are normal", "EditReward's μ is unnormalised", "one source and instruction"):
        assert words in legend


def test_legend_names_the_rewards_own_dimensions():
    class Realism:
        dimensions = ("realism",)

    assert "*R μ*: realism — the reward's mean" in score_legend(Realism())
    assert "IF" not in score_legend(Realism())


def test_the_selected_frame_is_the_contact_sheets_colour():
    from editrl.sampler.contact_sheet import BEST

    assert BEST == (40, 170, 60)
    assert ".editrl-card.selected { border: 4px solid #28aa3c; }" in page_css()


def test_the_search_menu_offers_every_search_of_the_sampler(tiny_editor, tiny_reward):
    from editrl.sampler.best_of_n import SEARCHES

    demo = build_demo({"kontext": tiny_editor}, tiny_reward)
    menu = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "search")
    assert [value for _, value in menu.choices] == list(SEARCHES) and menu.value == SEARCHES[0]
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert "adaptive" in SEARCHES and {"budget", "good"} <= ids  # the adaptive search's own settings are on the page


def test_address_line():
    assert address_line("http://127.0.0.1:7860/", None, False) == "editrl demo: open http://127.0.0.1:7860/ (Ctrl+C stops it)"
    assert "; public link https://x.gradio.live" in address_line("http://127.0.0.1:7860/", "https://x.gradio.live", True)
    assert "no public link" in address_line("http://127.0.0.1:7860/", None, True)


@pytest.mark.parametrize("verbose", [False, True])
def test_editrl_demo_prints_one_address_line_and_no_request_lines(tiny_editor, tmp_path, monkeypatch, capsys, caplog,
                                                                   verbose):
    """`editrl demo` in-process (Ctrl+C replaced by closing the page once it is up): stdout is the one address line,
    without gradio's "set `share=True`" hint; the page's own HTTP requests are logged only with -v."""
    import json

    folder = tmp_path / "editor"
    tiny_editor.pipe.save_pretrained(folder)
    (folder / "editrl_editor.json").write_text(json.dumps({"resolution": 64, "default_steps": 2}))
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: self.close(verbose=False))
    httpx_logger = logging.getLogger("httpx")
    caplog.set_level(logging.INFO)
    port = free_port()
    try:
        code = main(["demo", *(["-v"] if verbose else []), "--editor", str(folder), "--reward", "oracle", "--examples", "1",
                     "--port", str(port)])
    finally:
        httpx_logger.setLevel(logging.NOTSET)
    out, err = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [f"editrl demo: open http://127.0.0.1:{port}/ (Ctrl+C stops it)"]
    assert "share=True" not in out + err + caplog.text
    requests = [r for r in caplog.records if r.name == "httpx" and "HTTP Request" in r.getMessage()]
    assert bool(requests) == verbose
