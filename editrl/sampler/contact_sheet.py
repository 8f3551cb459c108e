"""Contact sheets: the best-of-N candidates of one edit, and the one renderer every sheet of tiles uses.

Drawn with PIL only. ``draw_cells`` lays out rows of cells (an image tile with lines of text under it, or a
text-only cell such as an instruction); ``contact_sheet`` uses it for best-of-N: the source, then the candidates
in rank order, the best with a thick green frame, pruned candidates (their image is the preview they were
judged on) labelled with the step they stopped. RL's evaluation grids (``editrl.rl.plots``) use it too.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from .best_of_n import BestOfNResult

BEST = (40, 170, 60)  # the selected candidate's frame, on the demo's page too (``editrl.demo.page_css``)
PRUNED = (150, 150, 150)
TEXT = (20, 20, 20)
LINE_HEIGHT, PAD, TEXT_LINES = 12, 6, 4
CHAR_WIDTH = 6  # PIL's default bitmap font


@dataclass
class Cell:
    """One cell of a sheet: ``image`` as a tile with ``lines`` under it, or (``image`` None) ``lines`` filling the
    whole cell; ``colours`` per line (default ``TEXT``); ``frame`` a colour for a thick frame around the tile."""

    image: Image.Image | None
    lines: Sequence[str] = ()
    colours: Sequence[tuple[int, int, int]] = field(default_factory=tuple)
    frame: tuple[int, int, int] | None = None


def wrap(text: str, tile: int, max_lines: int) -> list[str]:
    """``text`` in at most ``max_lines`` lines as wide as a cell of ``tile`` px (a text-only cell's content)."""
    lines = textwrap.wrap(text, max(8, tile // CHAR_WIDTH)) or [""]
    return lines if len(lines) <= max_lines else lines[: max_lines - 1] + [lines[max_lines - 1][:-3] + "..."]


def cell_size(tile: int) -> tuple[int, int]:
    """(width, height) of one cell of a sheet of ``tile`` px tiles."""
    return tile + 2 * PAD, tile + 2 * PAD + TEXT_LINES * LINE_HEIGHT + PAD


def draw_cells(rows: Sequence[Sequence[Cell]], tile: int) -> Image.Image:
    """Rows of cells on a white sheet as wide as the longest row; tiles smaller than ``tile`` are enlarged
    without smoothing (a 64 px sample stays crisp), larger ones reduced with LANCZOS."""
    font = ImageFont.load_default()
    cell_w, cell_h = cell_size(tile)
    sheet = Image.new("RGB", (max(len(r) for r in rows) * cell_w, len(rows) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            x, y = c * cell_w, r * cell_h
            text_y = y + PAD
            if cell.image is not None:
                image = cell.image
                resample = Image.Resampling.NEAREST if image.width < tile else Image.Resampling.LANCZOS
                sheet.paste(image.convert("RGB").resize((tile, tile), resample), (x + PAD, y + PAD))
                if cell.frame is not None:
                    draw.rectangle([x + 1, y + 1, x + cell_w - 2, y + tile + 2 * PAD - 2], outline=cell.frame, width=PAD - 1)
                text_y = y + tile + 2 * PAD
            for j, line in enumerate(cell.lines):
                colour = cell.colours[j] if j < len(cell.colours) else TEXT
                draw.text((x + PAD, text_y + j * LINE_HEIGHT), line, fill=colour, font=font)
    return sheet


def _label(candidate) -> list[str]:
    record = candidate.record
    dims = [key[3:] for key in record if key.startswith("mu_")]
    short = {"instruction_following": "IF", "visual_quality": "VQ"}
    lines = [f"#{candidate.rank} seed {candidate.seed}", f"score {record['score']:.3f} ±{record['score_sigma']:.3f}"]
    lines.append(" ".join(f"{short.get(d, d[:2].upper())} {record['mu_' + d]:.2f}" for d in dims))
    if candidate.pruned_at is not None:
        lines.append(f"pruned at step {candidate.pruned_at}")
    return lines


def _candidate_cell(candidate) -> Cell:
    lines = _label(candidate)
    colour = PRUNED if candidate.pruned_at is not None else TEXT
    best = candidate.rank == 1
    return Cell(candidate.image, lines, [BEST if best and j == 0 else colour for j in range(len(lines))], BEST if best else None)


def contact_sheet(result: "BestOfNResult", tile: int = 160, columns: int | None = None) -> Image.Image:
    """One PNG-ready image: the source first, then the candidates best first, scores under each."""
    cells = [Cell(result.source, ["source", result.instruction[:28]])] + [_candidate_cell(c) for c in result.candidates]
    columns = columns or min(len(cells), max(3, math.ceil(math.sqrt(len(cells)))))
    return draw_cells([cells[i : i + columns] for i in range(0, len(cells), columns)], tile)
