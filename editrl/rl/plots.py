"""What an RL run draws: the evaluation grid (``samples/step-N.png``) and the training curves (``curves.png``).

Both are drawn with PIL (no plotting dependency). The curves are first described as a ``Figure`` (panels, axis
labels, legends, ticks), then rendered, so a test can read every label off the figure without looking at pixels.
One panel per unit: rewards of the training reward model, the held-out judge's score, and shares of edits (the
world's exact edits and lost objects), each with its own y scale; the x axis counts iterations and images sampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

from ..sampler.contact_sheet import TEXT, Cell, draw_cells, wrap

GRID_PROMPTS = 8  # rows of an evaluation grid: enough to judge the edits, few enough to read
GRID_TILE = 128  # px: a 64 px world sample shows at 2x
INSTRUCTION_LINES = 14  # under the heading, what a text cell of GRID_TILE holds
EXACT, LOST = (40, 150, 60), (200, 40, 40)
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


def eval_grid(sources: Sequence[Image.Image], instructions: Sequence[str], edits: Sequence[Image.Image],
              rewards: Sequence[float], judge: Sequence[float] | None = None,
              measures: Mapping[str, Sequence[float]] | None = None, limit: int = GRID_PROMPTS) -> Image.Image:
    """One row per evaluation prompt (the first ``limit``): its source, its instruction, then its sample with the
    training reward, the judge's score and, where the judge measures them, whether the edit is exact or lost an
    object."""
    measures = measures or {}
    rows = []
    for i, (source, instruction, edit) in enumerate(list(zip(sources, instructions, edits))[:limit]):
        lines = [f"reward {float(rewards[i]):.3f}"] + ([f"judge {float(judge[i]):.3f}"] if judge is not None else [])
        colours = [TEXT] * len(lines)
        for name, mark, colour in (("exact_edit", "exact edit", EXACT), ("lost_object", "lost an object", LOST)):
            if name in measures and float(measures[name][i]):
                lines.append(mark)
                colours.append(colour)
        rows.append([Cell(source, ["source", f"prompt {i}"]), Cell(None, ["instruction:", *wrap(instruction, GRID_TILE, INSTRUCTION_LINES)]),
                     Cell(edit, lines, colours)])
    return draw_cells(rows, GRID_TILE)


@dataclass
class Series:
    label: str  # the legend entry
    points: list[tuple[float, float]]  # (iteration, value)


@dataclass
class Panel:
    ylabel: str  # what the y axis measures, with its unit
    series: list[Series]
    ylim: tuple[float, float]

    def yticks(self) -> list[float]:
        lo, hi = self.ylim
        return [lo, (lo + hi) / 2, hi]


@dataclass
class Figure:
    title: str
    xlabel: str
    panels: list[Panel]
    xticks: list[tuple[float, str]] = field(default_factory=list)  # (iteration, label)


def _limits(values: list[float], fixed: tuple[float, float] | None) -> tuple[float, float]:
    """The y range: ``fixed``, or the values padded by 5%, at least 2% of their magnitude wide (a flat judge
    does not look like a cliff, and its ticks stay distinct)."""
    if fixed is not None:
        return fixed
    lo, hi = min(values), max(values)
    half = max((hi - lo) * 0.55, 0.01 * max(1.0, abs(lo), abs(hi)))
    mid = (lo + hi) / 2
    return mid - half, mid + half


def curves_figure(records: Sequence[Mapping[str, Any]], title: str, reward: str, judge: str | None) -> Figure:
    """The figure of a run's ``log.jsonl`` records: ``reward`` and ``judge`` name the training reward and the judge."""
    panels = []
    for ylabel, keys, fixed in (
        (f"training reward ({reward})", {"reward_mean": "rollouts of the iteration", "eval_reward": "held-out prompts"}, None),
        (f"held-out judge score ({judge})", {"judge_score": "held-out prompts"}, None),
        ("share of held-out edits (0-1)", {"exact_edit": "exact edits", "lost_object": "lost an object"}, (0.0, 1.0)),
    ):
        series = [Series(label, [(r["step"], float(r[key])) for r in records if key in r]) for key, label in keys.items()]
        series = [s for s in series if s.points]
        if series:
            panels.append(Panel(ylabel, series, _limits([y for s in series for _, y in s.points], fixed)))
    steps = [r["step"] for r in records]
    per_iteration = next((r["images"] / r["step"] for r in reversed(records) if r.get("images") and r["step"]), None)
    last = max(steps, default=0)
    ticks = sorted({round(last * k / 5) for k in range(6)}) if last else [0]
    xticks = [(s, f"{s}" if per_iteration is None else f"{s} ({round(s * per_iteration)})") for s in ticks]
    xlabel = "iteration" if per_iteration is None else "iteration (images sampled)"
    return Figure(title, xlabel, panels, xticks)


def render(figure: Figure, width: int = 720, panel_height: int = 170) -> Image.Image:
    """The figure as an image: panels stacked, each with its y label above it and the legend beside the label, y
    ticks on the left; the x ticks and label under the last panel."""
    font = ImageFont.load_default()
    left, right, top, gap, bottom = 70, 20, 24, 34, 44
    n = max(1, len(figure.panels))
    height = top + n * (panel_height + gap) + bottom
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 6), figure.title, fill=(0, 0, 0), font=font)
    x_lo = min((t for t, _ in figure.xticks), default=0)
    x_hi = max((t for t, _ in figure.xticks), default=1)
    span = (x_hi - x_lo) or 1

    def px(x: float) -> float:
        return left + (x - x_lo) / span * (width - left - right)

    for i, panel in enumerate(figure.panels):
        y0 = top + i * (panel_height + gap) + gap - 14
        y1 = y0 + panel_height
        lo, hi = panel.ylim

        def py(y: float) -> float:
            return y1 - (y - lo) / ((hi - lo) or 1) * (y1 - y0)

        draw.text((left, y0 - 14), panel.ylabel, fill=(0, 0, 0), font=font)
        draw.rectangle([left, y0, width - right, y1], outline=(0, 0, 0))
        for tick in panel.yticks():
            draw.line([left - 4, py(tick), left, py(tick)], fill=(0, 0, 0))
            draw.text((4, py(tick) - 6), f"{tick:.3g}", fill=(0, 0, 0), font=font)
        for t, _ in figure.xticks:
            draw.line([px(t), y1, px(t), y1 + 4], fill=(0, 0, 0))
        for j, series in enumerate(panel.series):
            colour = COLOURS[j % len(COLOURS)]
            points = [(px(x), py(y)) for x, y in series.points]
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
            for x, y in points:
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
            legend_x, legend_y = left + 280 + 160 * j, y0 - 14  # beside the y label, above the lines
            draw.line([legend_x, legend_y + 6, legend_x + 16, legend_y + 6], fill=colour, width=2)
            draw.text((legend_x + 20, legend_y), series.label, fill=colour, font=font)
    axis_y = top + n * (panel_height + gap) - 10
    for t, label in figure.xticks:
        draw.text((px(t) - 3 * len(label), axis_y), label, fill=(0, 0, 0), font=font)
    draw.text((left + (width - left - right) // 2 - 3 * len(figure.xlabel), axis_y + 18), figure.xlabel,
              fill=(0, 0, 0), font=font)
    return image
