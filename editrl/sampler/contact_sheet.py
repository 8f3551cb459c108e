"""A contact sheet of best-of-N candidates: the source, then every candidate with its scores.

Drawn with PIL only. Candidates appear in rank order; the best one gets a thick green frame, pruned
candidates (their image is the preview they were judged on) are labelled with the step they stopped.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from .best_of_n import BestOfNResult

BEST = (40, 170, 60)  # the selected candidate's frame, on the demo's page too (``editrl.demo.page_css``)
PRUNED = (150, 150, 150)
TEXT = (20, 20, 20)


def _label(candidate) -> list[str]:
    record = candidate.record
    dims = [key[3:] for key in record if key.startswith("mu_")]
    short = {"instruction_following": "IF", "visual_quality": "VQ"}
    lines = [f"#{candidate.rank} seed {candidate.seed}", f"score {record['score']:.3f} ±{record['score_sigma']:.3f}"]
    lines.append(" ".join(f"{short.get(d, d[:2].upper())} {record['mu_' + d]:.2f}" for d in dims))
    if candidate.pruned_at is not None:
        lines.append(f"pruned at step {candidate.pruned_at}")
    return lines


def contact_sheet(result: "BestOfNResult", tile: int = 160, columns: int | None = None) -> Image.Image:
    """One PNG-ready image: the source first, then the candidates best first, scores under each."""
    font = ImageFont.load_default()
    entries = [(result.source, ["source", result.instruction[:28]], None)]
    entries += [(c.image, _label(c), c) for c in result.candidates]
    columns = columns or min(len(entries), max(3, math.ceil(math.sqrt(len(entries)))))
    rows = math.ceil(len(entries) / columns)
    line_height, pad = 12, 6
    text_height = 4 * line_height + pad
    cell_w, cell_h = tile + 2 * pad, tile + 2 * pad + text_height
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (image, lines, candidate) in enumerate(entries):
        x, y = (i % columns) * cell_w, (i // columns) * cell_h
        thumb = image.convert("RGB").resize((tile, tile), Image.Resampling.NEAREST if image.width < tile else Image.Resampling.LANCZOS)
        sheet.paste(thumb, (x + pad, y + pad))
        if candidate is not None and candidate.rank == 1:
            draw.rectangle([x + 1, y + 1, x + cell_w - 2, y + tile + 2 * pad - 2], outline=BEST, width=pad - 1)
        color = PRUNED if candidate is not None and candidate.pruned_at is not None else TEXT
        for j, line in enumerate(lines):
            draw.text((x + pad, y + tile + 2 * pad + j * line_height), line, fill=BEST if (candidate and candidate.rank == 1 and j == 0) else color, font=font)
    return sheet
