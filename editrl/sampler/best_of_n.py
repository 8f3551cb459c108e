"""Best-of-N test-time scaling: sample N edits, score them with a reward, keep the best.

``best_of_n`` draws one candidate per seed from an editor, scores them with any
``RewardFunction`` (EditReward, the world oracle, a remote server, a mix) and ranks them under a
selection rule (``editrl.sampler.selection``). With ``search="halving"`` weak candidates are pruned
early on their x0 previews (``editrl.sampler.search``) for a fraction of the compute; with
``search="adaptive"`` a budget in NFE is spent in rounds of pruned searches until an edit is
confidently good (``editrl.sampler.adaptive``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..errors import EditRLError
from ..files import atomic_path, check_output, write_text_atomic
from ..images import ImageLike, check_instruction, load_image
from ..reward.output import RewardFunction
from .adaptive import AdaptiveConfig, run_adaptive
from .editors.base import Editor, SourceLike, split_sources
from .search import SEARCHES as RUN_SEARCHES
from .search import Candidate, HalvingConfig, run_search
from .selection import check_select

logger = logging.getLogger(__name__)

SEARCHES = (*RUN_SEARCHES, "adaptive")
"""Every search ``best_of_n`` runs: ``run_search``'s, and the adaptive search built on it."""


@dataclass
class BestOfNResult:
    """Candidates best first, with the total compute: ``nfe`` denoiser evaluations and
    ``reward_calls`` edits or previews scored."""

    candidates: list[Candidate]
    nfe: int
    reward_calls: int
    select: str
    search: str
    source: Image.Image
    instruction: str
    run: dict = field(default_factory=dict)
    """How the candidates were made: editrl version, the source image (``source_record``), editor (name, model,
    LoRA), its device and dtype (and the reward's), reward, steps, guidance, seeds, selection and search settings —
    written to scores.json so a result can be reproduced and checked against its input."""
    adaptive: dict | None = None
    """The adaptive search's log (budget, rounds with their seeds, pruning steps and NFE, why it stopped)."""

    @property
    def best(self) -> Candidate:
        return self.candidates[0]

    @property
    def images(self) -> list[Image.Image]:
        return [c.image for c in self.candidates]

    def to_json(self) -> dict:
        return {
            "instruction": self.instruction, "run": self.run, "select": self.select, "search": self.search,
            "n": len(self.candidates), "nfe": self.nfe, "reward_calls": self.reward_calls,
            "best_seed": self.best.seed, "adaptive": self.adaptive, "candidates": [c.to_json() for c in self.candidates],
        }

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write best.png, candidate_XX_seedS.png (XX = index in seed order), contact_sheet.png and
        scores.json into ``out_dir``; each file is written to a temporary name then renamed. A folder
        holding a previous run is refused (``check_out_dir``): its files would mix with these."""
        from .contact_sheet import contact_sheet

        out = check_out_dir(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        _save_png(self.best.image, out / "best.png")
        scores = self.to_json()
        for candidate, entry in zip(self.candidates, scores["candidates"]):
            entry["file"] = f"candidate_{candidate.index:02d}_seed{candidate.seed}.png"
            _save_png(candidate.image, out / entry["file"])
        _save_png(contact_sheet(self), out / "contact_sheet.png")
        write_text_atomic(out / "scores.json", json.dumps(scores, indent=2))
        return out


RUN_FILES = ("scores.json", "best.png", "contact_sheet.png", "candidate_*.png")


def source_record(source: ImageLike, name: str | None = None) -> dict:
    """Which image was edited: a file's absolute path and the sha256 of its bytes (``sha256sum`` checks it);
    for bytes, their sha256; for an image in memory, ``name`` (e.g. "built-in world example") and the sha256
    of its RGB pixels as the editor reads them (``hashlib.sha256(load_image(source).tobytes())``), with its size."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).resolve()
        return {"path": str(path), "name": name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "sha256_of": "file"}
    if isinstance(source, (bytes, bytearray)):
        return {"path": None, "name": name, "sha256": hashlib.sha256(source).hexdigest(), "sha256_of": "bytes"}
    image = load_image(source, "source")
    return {"path": None, "name": name, "size": list(image.size), "sha256": hashlib.sha256(image.tobytes()).hexdigest(),
            "sha256_of": "RGB pixels"}


def _device_dtype(model) -> tuple[str | None, str | None]:
    """``(device, dtype)`` of a model with weights, as strings ("cuda:0", "bfloat16"); None for what it lacks
    (the oracle, a remote reward)."""
    device, dtype = getattr(model, "device", None), getattr(model, "dtype", None)
    return (None if device is None else str(device)), (None if dtype is None else str(dtype).removeprefix("torch."))


def check_out_dir(out_dir: str | os.PathLike, label: str = "out") -> Path:
    """``out_dir`` as a Path if it can be created and holds no earlier best-of-N output; else one error naming it.
    Refusing (rather than deleting) never loses a run, and a rerun can never leave a mix of two runs' candidates."""
    out = check_output(out_dir, label, folder=True)
    found = sorted(p.name for pattern in RUN_FILES for p in out.glob(pattern)) if out.is_dir() else []
    if found:
        raise EditRLError(f"{label} {str(out)!r}: holds a previous best-of-N run ({found[0]}, ...); "
                          "choose a new folder or remove that one")
    return out


def _save_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def _rank(candidates: list[Candidate]) -> list[Candidate]:
    """Finished candidates by final value; then pruned ones, later-pruned first, by preview value (sets ``rank``)."""
    ranked = sorted(candidates, key=lambda c: (c.pruned_at is None, c.pruned_at or 0, c.value), reverse=True)
    for rank, candidate in enumerate(ranked, start=1):
        candidate.rank = rank
    return ranked


def best_of_n(
    editor: Editor,
    reward: RewardFunction,
    source: SourceLike,
    instruction: str,
    n: int = 8,
    seeds: Sequence[int] | None = None,
    select: str = "fused",
    k: float = 1.0,
    search: str = "full",
    num_steps: int | None = None,
    guidance: float | None = None,
    halving: HalvingConfig | None = None,
    batch_size: int | None = None,
    reward_batch_size: int | None = None,
    reward_name: str | None = None,
    source_name: str | None = None,
    adaptive: AdaptiveConfig | None = None,
) -> BestOfNResult:
    """Sample ``n`` edits of ``source`` (one per seed; default seeds 0..n-1), score and rank them. ``source`` may
    be a list of images for an editor that takes several (the first is edited; ``result.source`` is that one).

    With ``search="adaptive"`` the number of candidates follows from ``adaptive`` (its budget and stop
    rule) instead of ``n``: seeds are drawn from ``seeds[0]`` (default 0) upwards.

    Args:
        select: "fused" (fused score), "lcb" (fused mu - k * sigma) or a dimension name of the reward (its mu);
            see ``editrl.sampler.selection``.
        k: the width of the lower confidence bound for ``select="lcb"``.
        search: "full" (plain best-of-N), "halving" (prune on x0 previews, see ``HalvingConfig``) or
            "adaptive" (rounds of pruned searches within a budget, see ``AdaptiveConfig``).
        num_steps, guidance: override the editor's defaults.
        batch_size: candidates per denoiser call (memory); reward_batch_size: edits per reward call.
        reward_name: how the reward was named (e.g. the ``--reward`` spec), recorded in ``result.run``;
            default: its class name.
        source_name: what to call an in-memory ``source`` in ``result.run["source"]`` (a file is named by its path).
    """
    select = check_select(select, getattr(reward, "dimensions", None))
    instruction = check_instruction(instruction, "instruction")
    if search not in SEARCHES:
        raise EditRLError(f"search: expected one of {', '.join(SEARCHES)}, got {search!r}")
    if n < 1:
        raise EditRLError(f"n: expected at least 1 candidate, got {n}")
    seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n and search != "adaptive":
        raise EditRLError(f"seeds: expected {n} seeds (one per candidate), got {len(seeds)}")
    cond = editor.encode([source], [instruction], guidance=guidance)
    log = None
    if search == "adaptive":
        adaptive = adaptive or AdaptiveConfig()
        result = run_adaptive(editor, reward, cond, seeds[0] if seeds else 0, num_steps=num_steps, select=select, k=k,
                              config=adaptive, batch_size=batch_size, reward_batch_size=reward_batch_size)
        log, seeds, n = result.to_json(), [c.seed for c in result.candidates], len(result.candidates)
    else:
        result = run_search(
            editor, reward, cond.repeat_interleave(n), seeds, num_steps=num_steps, search=search, select=select, k=k,
            halving=halving, batch_size=batch_size, reward_batch_size=reward_batch_size,
        )
    candidates = _rank(result.candidates)
    logger.info(
        "best-of-%d (%s, select=%s): best seed %d, value %.4f; NFE %d, reward calls %d",
        n, search, select, candidates[0].seed, candidates[0].value, result.nfe, result.reward_calls,
    )
    from .. import __version__

    (edited,), (references,) = split_sources([source])
    device, dtype = _device_dtype(editor)
    reward_device, reward_dtype = _device_dtype(reward)
    run = {
        "editrl_version": __version__, "source": source_record(edited, source_name),
        "references": [source_record(image) for image in references], **(editor.origin or {"editor": editor.name}),
        "device": device, "dtype": dtype, "reward": reward_name or type(reward).__name__, "reward_device": reward_device,
        "reward_dtype": reward_dtype, "resolution": editor.resolution,
        "steps": int(num_steps or editor.default_steps),
        "guidance": float(editor.default_guidance if guidance is None else guidance), "seeds": seeds,
        "select": select, "k": k if select == "lcb" else None, "search": search,
        "halving": asdict(halving or HalvingConfig()) if search == "halving" else None,
        "adaptive": asdict(adaptive) if search == "adaptive" else None,
    }
    return BestOfNResult(candidates, result.nfe, result.reward_calls, select, search, cond.sources[0], instruction, run,
                         adaptive=log)
