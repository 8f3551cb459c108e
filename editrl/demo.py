"""``editrl demo``: a Gradio page for best-of-N editing and for scoring your own edits.

Tab "Best-of-N": pick a world example or upload a source image, type an instruction, choose the
editor, N, the selection rule and the seed, and run. The candidates appear best first with the fused
score and the instruction-following (IF) and visual-quality (VQ) mu and sigma under each; the
selected one is marked and shown on its own. The page calls ``editrl.sampler.best_of_n`` — the
function behind ``editrl best-of-n`` — so the same seed gives the same candidates and scores.

Tab "Score your edits": upload a source, an instruction and any number of edited images; they come
back ranked by the reward.

``build_demo(editors, reward, examples)`` takes models already in memory (tests inject tiny ones);
``editrl demo`` loads the shipped world models by default, on CPU.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

from PIL import Image

from .errors import EditRLError
from .images import ImageLike, check_instruction, load_image
from .reward.output import RewardFunction, RewardOutput

logger = logging.getLogger(__name__)

RULE_LABELS = {  # the rules of editrl.sampler.selection, described for the page
    "mean": "fused mean score",
    "lcb": "lower confidence bound (mu - k sigma)",
    "if": "instruction following only",
    "vq": "visual quality only",
}
SCORE_COLUMNS = ["score", "IF mu", "IF sigma", "VQ mu", "VQ sigma"]
COLUMNS = ["rank", "seed", "rule value", *SCORE_COLUMNS, "NFE", "selected"]
SELECTED_MARK = "★ SELECTED"
# Captions wrap instead of being cut; the first (selected) candidate gets a gold ring; the tiny world
# images are enlarged without blurring.
CSS = """
#candidates .caption-label, #own-candidates .caption-label { white-space: normal; max-width: 100%; left: 0; }
#candidates .gallery-item:first-child .thumbnail-item, #own-candidates .gallery-item:first-child .thumbnail-item { outline: 5px solid #f5b301; outline-offset: -5px; }
#source img, #best img, #own-source img { min-width: 192px; min-height: 192px; object-fit: contain; }
#source img, #best img, #own-source img, #candidates img, #own-candidates img { image-rendering: pixelated; }
"""


def caption(rank: int, record: dict, name: str, selected: bool = False) -> str:
    """The text under one candidate: rank, seed or file name, fused score, IF and VQ mu/sigma (4 decimals)."""
    head = f"{SELECTED_MARK} · " if selected else ""
    return (
        f"{head}#{rank} {name} · score {record['score']:.4f} · "
        f"IF μ {record['mu_instruction_following']:.4f} σ {record['sigma_instruction_following']:.4f} · "
        f"VQ μ {record['mu_visual_quality']:.4f} σ {record['sigma_visual_quality']:.4f}"
    )


def _scores_row(record: dict) -> list[float]:
    return [round(record[key], 4) for key in (
        "score", "mu_instruction_following", "sigma_instruction_following", "mu_visual_quality", "sigma_visual_quality")]


def run_best_of_n(editor, reward: RewardFunction, source: ImageLike, instruction: str, n: int, select: str, seed: int,
                  search: str = "full"):
    """``best_of_n`` with seeds ``seed .. seed+n-1`` (as ``editrl best-of-n --seed``), laid out for the
    page: (gallery items best first, selected image, its caption, table rows)."""
    from .sampler.best_of_n import best_of_n

    if source is None:
        raise EditRLError("source image: upload one or pick an example")
    n, seed = int(n), int(seed)
    result = best_of_n(editor, reward, source, instruction, n=n, seeds=range(seed, seed + n), select=select, search=search)
    gallery = [(c.image, caption(c.rank, c.record, f"seed {c.seed}", selected=c.rank == 1)) for c in result.candidates]
    table = [[c.rank, c.seed, round(c.value, 4), *_scores_row(c.record), c.nfe, "yes" if c.rank == 1 else ""]
             for c in result.candidates]
    best = result.best
    summary = f"{caption(1, best.record, f'seed {best.seed}', selected=True)}\n" \
              f"select={select}, search={search}: {result.nfe} denoiser evaluations, {result.reward_calls} reward calls"
    return gallery, best.image, summary, table


def score_uploads(reward: RewardFunction, source: ImageLike, instruction: str, edits: Sequence[str] | None):
    """Score a user's edited images of one source: (gallery best first, table rows)."""
    if source is None:
        raise EditRLError("source image: upload the image the edits were made from")
    if not edits:
        raise EditRLError("edited images: upload at least one")
    instruction = check_instruction(instruction, "instruction")
    images = [load_image(path, f"edited image {i + 1}") for i, path in enumerate(edits)]
    source = load_image(source, "source image")
    out: RewardOutput = reward.score([source] * len(images), [instruction] * len(images), images)
    records = out.to_records()
    order = sorted(range(len(images)), key=lambda i: -records[i]["score"])
    names = [str(getattr(p, "name", p)).rsplit("/", 1)[-1] for p in edits]
    gallery = [(images[i], caption(rank + 1, records[i], names[i], selected=rank == 0)) for rank, i in enumerate(order)]
    table = [[rank + 1, names[i], *_scores_row(records[i])] for rank, i in enumerate(order)]
    return gallery, table


def build_demo(
    editors: Mapping[str, object],
    reward: RewardFunction,
    examples: Sequence[tuple[Image.Image, str]] = (),
    max_n: int = 16,
    default_n: int = 4,
):
    """The Gradio Blocks app. ``editors``: name -> Editor; ``examples``: (source, instruction) pairs,
    the first one preloaded."""
    import gradio as gr

    if not editors:
        raise EditRLError("demo: needs at least one editor")
    names = list(editors)

    def on_run(source, instruction, editor_name, n, select, search, seed):
        try:
            return run_best_of_n(editors[editor_name], reward, source, instruction, n, select, seed, search)
        except EditRLError as err:
            raise gr.Error(str(err)) from None

    def on_score(source, instruction, edits):
        try:
            return score_uploads(reward, source, instruction, edits)
        except EditRLError as err:
            raise gr.Error(str(err)) from None

    first = examples[0] if examples else (None, "")
    with gr.Blocks(title="editrl demo", analytics_enabled=False) as demo:
        gr.Markdown("# editrl: best-of-N image editing with a reward model\n"
                    "Draw N edits, score each with the reward (instruction following **IF**, visual quality **VQ**: "
                    "mean μ and uncertainty σ), keep the best.")
        with gr.Tab("Best-of-N"):
            with gr.Row():
                with gr.Column():
                    source = gr.Image(value=first[0], type="pil", image_mode="RGB", format="png", label="Source image", elem_id="source")
                    instruction = gr.Textbox(value=first[1], label="Instruction", elem_id="instruction")
                    if examples:
                        gr.Examples(examples=[[image, text] for image, text in examples], inputs=[source, instruction], label="World examples")
                    with gr.Row():
                        editor = gr.Dropdown(names, value=names[0], label="Editor", elem_id="editor")
                        select = gr.Dropdown([(f"{k}: {v}", k) for k, v in RULE_LABELS.items()], value="mean", label="Selection rule", elem_id="select")
                        search = gr.Dropdown([("full: plain best-of-N", "full"), ("halving: prune on x0 previews", "halving")],
                                             value="full", label="Search", elem_id="search")
                    with gr.Row():
                        n = gr.Slider(1, max_n, value=default_n, step=1, label="N (candidates)", elem_id="n")
                        seed = gr.Number(value=0, precision=0, label="Seed (candidates use seed .. seed+N-1)", elem_id="seed")
                    run = gr.Button("Run best-of-N", variant="primary", elem_id="run")
                with gr.Column():
                    best = gr.Image(label="Selected edit", format="png", interactive=False, elem_id="best")
                    best_caption = gr.Textbox(label="Selected edit's scores", interactive=False, lines=2, elem_id="best-caption")
            gallery = gr.Gallery(label="Candidates, best first", columns=4, height="auto", format="png", object_fit="contain", elem_id="candidates")
            table = gr.Dataframe(headers=COLUMNS, label="Scores", interactive=False, elem_id="scores")
            run.click(on_run, [source, instruction, editor, n, select, search, seed], [gallery, best, best_caption, table])
        with gr.Tab("Score your edits"):
            with gr.Row():
                with gr.Column():
                    own_source = gr.Image(type="pil", image_mode="RGB", format="png", label="Source image", elem_id="own-source")
                    own_instruction = gr.Textbox(label="Instruction", elem_id="own-instruction")
                    own_edits = gr.File(file_count="multiple", file_types=["image"], label="Edited images", elem_id="own-edits")
                    score_button = gr.Button("Score", variant="primary", elem_id="score")
                with gr.Column():
                    own_gallery = gr.Gallery(label="Your edits, best first", columns=3, height="auto", format="png", elem_id="own-candidates")
            own_table = gr.Dataframe(headers=["rank", "name", *SCORE_COLUMNS], label="Scores", interactive=False, elem_id="own-scores")
            score_button.click(on_score, [own_source, own_instruction, own_edits], [own_gallery, own_table])
    return demo


def world_examples(k: int = 6) -> list[tuple[Image.Image, str]]:
    """The first ``k`` test-split world examples; the first is ``editrl best-of-n``'s default."""
    from .world import make_examples

    return [(ex.source, ex.instruction) for ex in make_examples(k, seed=0, split="test")]


def launch(demo, host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True):
    """Serve ``demo``; with ``block=False`` return at once (tests stop it with ``demo.close()``)."""
    import gradio as gr

    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return demo.queue().launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                               quiet=not block, theme=theme, css=CSS, ssr_mode=False)
