"""``editrl demo``: a Gradio page for best-of-N editing and for scoring your own edits.

Tab "Best-of-N": pick a world example or upload a source image, type an instruction, choose the
editor, N, the selection rule, the search and its settings, and run. The selected edit appears at the
top beside the controls; below, every candidate best first, each image whole with its scores under
it (fused score, then mu and sigma per reward dimension), the selected one ringed and pruned ones
marked. The page calls ``editrl.sampler.best_of_n`` — the function behind ``editrl best-of-n`` — so
the same seed gives the same candidates and scores.

Tab "Score your edits": upload a source, an instruction and any number of edited images; they come
back ranked by the reward.

The candidates are drawn as plain HTML (figure + figcaption) rather than a Gradio gallery, whose
captions overlay the images and whose box scrolls. A bad input leaves the previous results in place
and says what was wrong in a short toast. ``build_demo(editors, reward, examples)`` takes models
already in memory (tests inject tiny ones); ``editrl demo`` loads the shipped world models by
default, on CPU. The page starts where ``editrl best-of-n`` does without flags (``editrl.defaults``): the
built-in world example, N = 8 from seed 0, the selected candidate framed in the contact sheet's colour.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from PIL import Image

from . import defaults
from .errors import EditRLError
from .images import ImageLike, check_instruction, load_image
from .reward.output import RewardFunction, RewardOutput

logger = logging.getLogger(__name__)

def rule_labels(reward) -> dict[str, str]:
    """The rules of ``editrl.sampler.selection`` for the page: fused, lcb and one per dimension the reward
    declares (``reward.dimensions``; a reward that declares none offers fused and lcb)."""
    dims = getattr(reward, "dimensions", None) or ()
    return {"fused": "fused score", "lcb": "fused μ − k·σ", **{d: f"{d.replace('_', ' ')} μ" for d in dims}}


SELECTED_MARK = "★ SELECTED"
MAX_N = 16
SEARCH_LABELS = {"halving": "halving (prune early)", "adaptive": "adaptive (budget, stop when good)"}
"""Page labels of the searches of ``editrl.sampler.best_of_n.SEARCHES`` (the Search menu offers every one; a search
without a label here is shown by its name)."""
WORLD_NOTE = (
    "**What the shipped world models understand.** The default editor and reward were trained only on the "
    "editing world: 64×64 px toy scenes of flat shapes (circle, square, triangle, ring, …) on a plain background, "
    "and its instruction words — recolor, remove, add, move, resize, change the background, and two joined by "
    "\"and\" (the World examples under the Best-of-N tab use them). A photo is squashed to 64×64 and not edited "
    "meaningfully. For real images start the page with a real editor and reward, e.g. "
    "`editrl demo --editor flux-kontext --model /models/FLUX.1-Kontext-dev --reward TIGER-Lab/EditReward-Qwen2.5-VL-7B --device cuda`."
)
CSS = """
.editrl-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px; }
.editrl-card { margin: 0; padding: 6px; border: 1px solid #ddd; border-radius: 6px; background: #fff; }
.editrl-card.selected { border: 4px solid SELECTED_COLOR; }
.editrl-card.pruned img { opacity: 0.6; }
.editrl-card img { display: block; width: 100%; aspect-ratio: 1 / 1; object-fit: contain; image-rendering: pixelated; }
.editrl-card figcaption { font-size: 13px; line-height: 1.35; color: #222; margin-top: 4px; overflow-wrap: anywhere; }
.editrl-card .tag { font-weight: 700; }
.editrl-card.pruned .tag { color: #888; }
#source img, #best img, #own-source img { image-rendering: pixelated; object-fit: contain; }
"""


def page_css() -> str:
    """The page's CSS, the selected card framed in the contact sheet's colour (``contact_sheet.BEST``), so the
    page and ``editrl best-of-n``'s contact_sheet.png mark the selected edit alike."""
    from .sampler.contact_sheet import BEST

    return CSS.replace("SELECTED_COLOR", "#{:02x}{:02x}{:02x}".format(*BEST))


def score_legend(reward) -> str:
    """What the numbers under the candidates and in the score tables mean, for ``reward``'s dimensions."""
    dims = getattr(reward, "dimensions", None) or ()
    names = ", ".join(f"*{_short(d)} μ*: {d.replace('_', ' ')}" for d in dims)
    return (
        "**Reading the scores.** *score*: the reward's fused score, what “fused score” ranks by (EditReward: the "
        f"mean of its dimensions' μ); higher is better. {names + ' — ' if names else ''}the reward's mean per "
        "dimension; *σ*: its uncertainty (0 for a reward without one). The numbers have no fixed scale: EditReward's "
        "μ is unnormalised and the world judges give log-probabilities (0 = certain), so negative values are normal. "
        "Compare only candidates of one source and instruction under one reward."
    )


def _short(dim: str) -> str:
    """instruction_following -> IF: initials of a dimension name, as the page's column headers."""
    return "".join(part[0] for part in dim.split("_")).upper()


def dimensions(record: dict) -> list[str]:
    """The reward's dimension names, from the ``mu_<dim>`` keys of one record (whatever the reward)."""
    return [key[3:] for key in record if key.startswith("mu_")]


def caption(rank: int, record: dict, name: str, selected: bool = False, pruned_at: int | None = None) -> str:
    """The text under one candidate: rank, seed or file name, fused score, then μ and σ per dimension."""
    head = f"{SELECTED_MARK} · " if selected else f"pruned at step {pruned_at} (preview) · " if pruned_at is not None else ""
    dims = " · ".join(f"{_short(d)} μ {record['mu_' + d]:.4f} σ {record['sigma_' + d]:.4f}" for d in dimensions(record))
    return f"{head}#{rank} {name} · score {record['score']:.4f} · {dims}"


def _data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def cards_html(items: Sequence[tuple[Image.Image, str, str]], grid_id: str) -> str:
    """A grid of (image, caption, kind) cards, kind in {"selected", "pruned", ""}: each image whole, its caption under it."""
    cards = []
    for image, text, kind in items:
        cards.append(f'<figure class="editrl-card {kind}"><img alt="{html.escape(text)}" src="{_data_uri(image)}">'
                     f"<figcaption>{html.escape(text)}</figcaption></figure>")
    return f'<div class="editrl-grid" id="{grid_id}-grid">{"".join(cards)}</div>'


def _table(rows_records: Sequence[tuple[list, dict]]) -> tuple[list[str], list[list]]:
    dims = dimensions(rows_records[0][1])
    headers = ["score", *(f"{_short(d)} {s}" for d in dims for s in ("μ", "σ"))]
    rows = [[*lead, round(r["score"], 4), *(round(r[f"{s}_{d}"], 4) for d in dims for s in ("mu", "sigma"))]
            for lead, r in rows_records]
    return headers, rows


@dataclass(frozen=True)
class Advice:
    """What the notes of ``world_notes`` tell the user to do, in the words of where they are shown: flags on the
    command line (``cli_advice``), the page's own controls in the demo (``page_advice``)."""

    photo: str  # after "a WxH image is not one of its scenes and will not be edited meaningfully."
    words: str  # in "the instruction is not one the world editor knows (...)"


def cli_advice() -> Advice:
    """The command line's words: the flags that pick a real editor and reward, and the built-in example's instruction."""
    from .sampler.editors.base import PHOTO_ADVICE
    from .world.examples import builtin_example

    return Advice(PHOTO_ADVICE, f"e.g. {builtin_example().instruction!r}")


def page_advice(editors: Mapping[str, object]) -> Advice:
    """The page's words: the real editors its Editor menu offers (or, with none, the About tab on starting the
    page with one), and its World examples."""
    real = [name for name, editor in editors.items() if not getattr(editor, "scope", None)]
    photo = (f"For real photos pick {' or '.join(real)} in the Editor menu." if real else
             "This page offers only the world editor: for real photos start it with a real editor and reward "
             "(see the About tab).")
    return Advice(photo, "the World examples below the candidates use its words")


def world_notes(editor, source: Image.Image | None, instruction: str, advice: Advice) -> list[str]:
    """Warnings for a narrow editor (one with a ``scope``, the world editor): a source that is not one of
    its scenes or is squashed, and an instruction outside the world's vocabulary; ``advice`` words what to do."""
    notes = list(editor.source_notes(source, advice=advice.photo)) if source is not None else []
    if getattr(editor, "scope", None):
        from .world.instructions import parse_instruction

        try:
            parse_instruction(instruction)
        except EditRLError:
            notes.append(f"editor {editor.label}: the instruction is not one the world editor knows ({advice.words}); "
                         "it will return near copies of the source")
    return notes


def run_best_of_n(editor, reward: RewardFunction, source: ImageLike, instruction: str, n: int, select: str, seed: int,
                  search: str = "full", k: float = 1.0, keep: float = 0.5, horizon: float = 0.5,
                  steps: int | None = None, guidance: float | None = None, max_n: int = MAX_N,
                  budget: int | None = None, good: float | None = None, references: Sequence[str] | None = None):
    """``best_of_n`` with seeds ``seed .. seed+n-1`` (as ``editrl best-of-n --seed``), laid out for the
    page: (candidate cards HTML, selected image, its caption, (table headers, rows), result). The adaptive search
    ignores N: it draws seeds from ``seed`` up within ``budget`` NFE (0 or empty: best-of-8's), stopping once an edit
    reaches ``good`` (empty: it spends the budget), as ``editrl best-of-n --search adaptive --budget --good``.
    ``references``: more source images (uploaded files) for an editor that takes several (``--image`` repeated): the
    source is edited, the references follow it; an editor of one source refuses them in one line."""
    from .sampler.adaptive import AdaptiveConfig
    from .sampler.best_of_n import best_of_n
    from .sampler.search import HalvingConfig

    if source is None:
        raise EditRLError("source image: upload one or pick an example")
    if references:
        source = [source, *(load_image(path, f"reference image {i + 1}") for i, path in enumerate(references))]
    n = _whole(n, "N")
    budget = None if budget in (None, "", 0) else _whole(budget, "budget")
    good = _number(good, "good")
    if search != "adaptive" and not 1 <= n <= max_n:
        raise EditRLError(f"N: expected 1 to {max_n} candidates on this page, got {n} (use `editrl best-of-n --n {n}` for more)")
    seed = _whole(seed, "seed")
    steps = None if steps in (None, "", 0) else _whole(steps, "steps")
    guidance = None if guidance in (None, "", 0) else float(guidance)  # 0 on the page: the editor's default
    result = best_of_n(editor, reward, source, instruction, n=n, seeds=range(seed, seed + n), select=select, k=float(k),
                       search=search, num_steps=steps, guidance=guidance,
                       halving=HalvingConfig(keep=float(keep), horizon=float(horizon)),
                       adaptive=AdaptiveConfig.until(budget, good))
    items = [(c.image, caption(c.rank, c.record, f"seed {c.seed}", c.rank == 1, c.pruned_at),
              "selected" if c.rank == 1 else "pruned" if c.pruned_at is not None else "") for c in result.candidates]
    headers, rows = _table([([c.rank, c.seed, round(c.value, 4)], c.record) for c in result.candidates])
    headers = ["rank", "seed", "rule value", *headers, "NFE", "pruned at step"]
    rows = [[*row, c.nfe, "" if c.pruned_at is None else c.pruned_at] for row, c in zip(rows, result.candidates)]
    best = result.best
    summary = f"{caption(1, best.record, f'seed {best.seed}', selected=True)}\n" \
              f"select={select}, search={search}: {result.nfe} denoiser evaluations, {result.reward_calls} reward calls"
    if result.adaptive:
        summary += f", {len(result.adaptive['rounds'])} rounds, stopped because {result.adaptive['stopped_because']}"
    return cards_html(items, "candidates"), best.image, summary, (headers, rows), result


def _number(value, name: str) -> float | None:
    """A number typed on the page (None if left empty), or one line naming the field."""
    if value is None or not str(value).strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise EditRLError(f"{name}: expected a number or nothing, got {value!r}") from None


def _whole(value, name: str) -> int:
    if value is None or float(value) != int(float(value)):
        raise EditRLError(f"{name}: expected a whole number, got {value!r}")
    return int(float(value))


def score_uploads(reward: RewardFunction, source: ImageLike, instruction: str, edits: Sequence[str] | None):
    """Score a user's edited images of one source: (cards HTML best first, (table headers, rows))."""
    if source is None:
        raise EditRLError("source image: upload the image the edits were made from")
    if not edits:
        raise EditRLError("edited images: upload at least one")
    instruction = check_instruction(instruction, "instruction")
    names = [str(getattr(p, "name", p)).replace("\\", "/").rsplit("/", 1)[-1] for p in edits]
    images = [load_image(path, f"edited image {name}") for path, name in zip(edits, names)]
    source = load_image(source, "source image")
    out: RewardOutput = reward.score([source] * len(images), [instruction] * len(images), images)
    records = out.to_records()
    order = sorted(range(len(images)), key=lambda i: -records[i]["score"])
    items = [(images[i], caption(rank + 1, records[i], names[i], selected=rank == 0), "selected" if rank == 0 else "")
             for rank, i in enumerate(order)]
    headers, rows = _table([([rank + 1, names[i]], records[i]) for rank, i in enumerate(order)])
    return cards_html(items, "own-candidates"), (["rank", "name", *headers], rows)


_PATH = re.compile(r"'?(/[^\s',]+/)([^/\s',]+)'?")


def toast_text(err: Exception) -> str:
    """An error for the page: one line, folders of (temporary upload) paths cut to the file name."""
    return _PATH.sub(lambda m: m.group(2), str(err).splitlines()[0])[:300]


def build_demo(
    editors: Mapping[str, object],
    reward: RewardFunction,
    examples: Sequence[tuple[Image.Image, str]] = (),
    max_n: int = MAX_N,
    default_n: int = defaults.N,
):
    """The Gradio Blocks app. ``editors``: name -> Editor; ``examples``: (source, instruction) pairs,
    the first one preloaded."""
    import gradio as gr

    from .sampler.best_of_n import SEARCHES

    if not editors:
        raise EditRLError("demo: needs at least one editor")
    names = list(editors)
    advice = page_advice(editors)

    def on_run(source, instruction, editor_name, n, select, search, seed, k, keep, horizon, steps, guidance, budget, good,
               references):
        """Notes on the source and instruction are shown even when the run then fails (its error as a toast)."""
        editor = editors[editor_name]
        notes = []
        try:
            notes = world_notes(editor, load_image(source, "source image") if source is not None else None,
                                instruction or "", advice)
            cards, best, summary, (headers, rows), _ = run_best_of_n(
                editor, reward, source, instruction, n, select, seed, search, k, keep, horizon, steps, guidance, max_n,
                budget, good, references)
        except EditRLError as err:
            gr.Warning(toast_text(err))
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), notes_text(notes)
        for note in notes:
            gr.Warning(note)
        return cards, best, summary, {"headers": headers, "data": rows}, notes_text(notes)

    def on_score(source, instruction, edits):
        try:
            cards, (headers, rows) = score_uploads(reward, source, instruction, edits)
        except EditRLError as err:
            gr.Warning(toast_text(err))
            return gr.skip(), gr.skip()
        return cards, {"headers": headers, "data": rows}

    legend = score_legend(reward)
    first = examples[0] if examples else (None, "")
    with gr.Blocks(title="editrl demo", analytics_enabled=False) as demo:
        gr.Markdown("### editrl — best-of-N image editing with a reward model: draw N edits, score each, keep the best")
        with gr.Tab("Best-of-N"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=260):
                    source = gr.Image(value=first[0], type="pil", image_mode="RGB", format="png", label="Source image",
                                      height=240, elem_id="source")
                    instruction = gr.Textbox(value=first[1], label="Instruction", lines=1, elem_id="instruction")
                    references = gr.File(file_count="multiple", file_types=["image"], height=120, elem_id="references",
                                         label="Reference images (FLUX.2, Qwen-Image-Edit-2509/2511)")
                with gr.Column(scale=3, min_width=300):
                    editor = gr.Dropdown(names, value=names[0], label="Editor", elem_id="editor")
                    with gr.Row():
                        n = gr.Number(value=default_n, precision=0, label=f"N (1–{max_n})", min_width=90, elem_id="n")
                        seed = gr.Number(value=defaults.SEED, precision=0, label="Seed (uses seed…seed+N−1)", min_width=150, elem_id="seed")
                    select = gr.Dropdown([(label, key) for key, label in rule_labels(reward).items()], value="fused",
                                         label="Selection rule", elem_id="select")
                    run = gr.Button("Run best-of-N", variant="primary", elem_id="run")
                with gr.Column(scale=3, min_width=260):
                    best = gr.Image(label="Selected edit", format="png", interactive=False, height=240, elem_id="best")
                    best_caption = gr.Textbox(label="Selected edit's scores", interactive=False, lines=3, elem_id="best-caption",
                                              info="higher is better; negative scores are normal (see Reading the scores below)")
            with gr.Accordion("Search and sampling settings", open=True):
                with gr.Row():
                    search = gr.Dropdown([(SEARCH_LABELS.get(mode, mode), mode) for mode in SEARCHES],
                                         value=SEARCHES[0], label="Search", min_width=240, elem_id="search")
                    k = gr.Number(value=1.0, label="k (lcb: μ − k·σ)", min_width=110, elem_id="k")
                    keep = gr.Number(value=0.5, label="keep (halving)", min_width=110, elem_id="keep")
                    horizon = gr.Number(value=0.5, label="horizon (halving)", min_width=110, elem_id="horizon")
                    steps = gr.Number(value=0, precision=0, label="steps (0: editor's)", min_width=130, elem_id="steps")
                    guidance = gr.Number(value=0, label="guidance (0: editor's)", min_width=130, elem_id="guidance")
                    budget = gr.Number(value=0, precision=0, label="budget NFE (adaptive; 0: best-of-8's)", min_width=150,
                                       elem_id="budget")
                    good = gr.Textbox(value="", label="good (adaptive; empty: spend the budget)", min_width=150, elem_id="good")
            notes = gr.Markdown(elem_id="notes")
            gr.Markdown("#### Candidates, best first")
            gr.Markdown(legend, elem_classes="editrl-legend")
            cards = gr.HTML(elem_id="candidates")
            table = gr.Dataframe(label="Scores", interactive=False, elem_id="scores")
            if examples:
                gr.Examples(examples=[[image, text] for image, text in examples], inputs=[source, instruction], label="World examples")
            run.click(on_run, [source, instruction, editor, n, select, search, seed, k, keep, horizon, steps, guidance, budget, good,
                               references],
                      [cards, best, best_caption, table, notes], api_name="on_run")
        with gr.Tab("Score your edits"):
            with gr.Row():
                with gr.Column():
                    own_source = gr.Image(type="pil", image_mode="RGB", format="png", label="Source image", height=240, elem_id="own-source")
                    own_instruction = gr.Textbox(label="Instruction", elem_id="own-instruction")
                with gr.Column():
                    own_edits = gr.File(file_count="multiple", file_types=["image"], label="Edited images", elem_id="own-edits")
                    score_button = gr.Button("Score", variant="primary", elem_id="score")
            gr.Markdown(legend, elem_classes="editrl-legend")
            own_cards = gr.HTML(elem_id="own-candidates")
            own_table = gr.Dataframe(label="Scores", interactive=False, elem_id="own-scores")
            score_button.click(on_score, [own_source, own_instruction, own_edits], [own_cards, own_table], api_name="on_score")
        with gr.Tab("About the models"):
            gr.Markdown(WORLD_NOTE)
    return demo


def notes_text(notes: Sequence[str]) -> str:
    """The notes as the page's Markdown, one paragraph each."""
    return "\n\n".join(f"⚠ {note}" for note in notes)


def world_examples(k: int = 6) -> list[tuple[Image.Image, str]]:
    """``k`` held-out world examples: first ``editrl best-of-n``'s built-in one, then the first other test-split ones."""
    from .world import make_examples
    from .world.examples import builtin_example

    first = builtin_example()
    others = [ex for ex in make_examples(k, seed=0, split="test") if (ex.scene, ex.instruction) != (first.scene, first.instruction)]
    return [(ex.source, ex.instruction) for ex in [first, *others][:k]]


def launch(demo, host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True) -> str:
    """Serve ``demo`` and print one line with its address (and returns it); with ``block=False`` return at once
    (tests stop it with ``demo.close()``). Gradio's own start-up lines are silenced (``quiet``): they tell the user
    to "set share=True in launch()", which ``editrl demo`` spells ``--share true``."""
    import gradio as gr

    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    demo.queue().launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=True,
                        theme=theme, css=page_css(), ssr_mode=False)
    line = address_line(demo.local_url, demo.share_url, share)
    print(line, flush=True)
    if block:
        demo.block_thread()
    return line


def address_line(local_url: str, share_url: str | None, share: bool) -> str:
    """The one line ``editrl demo`` prints when the page is up."""
    public = (f"; public link {share_url}" if share_url else
              "; no public link (gradio could not open one, see above)" if share else "")
    return f"editrl demo: open {local_url}{public} (Ctrl+C stops it)"
