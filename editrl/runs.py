"""The trainer shell shared by reward training, RL, the world editor and the world VLM pretraining.

- checkpoints: ``output_dir/checkpoints/step-N/`` folders written atomically (a temporary folder renamed
  when complete), the newest ``keep`` kept; ``save_checkpoint``/``load_checkpoint`` for trainers whose state
  is a torch dict (``trainer_state.pt``), ``checkpoint_folder`` for accelerate's ``save_state``;
- ``JsonlLog``: the append-only JSONL log, mirrored to the trackers;
- ``config.yaml`` in ``output_dir`` at the start: the resolved config and the editrl version, so a run
  folder always says how it was made;
- ``--resume`` compares the checkpoint's config with the current one and stops, naming the keys,
  unless only keys that cannot change the result (logging, the number of iterations) differ;
- ``report_to``: experiment tracking through accelerate's trackers (tensorboard, wandb);
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml
from PIL import Image

from .errors import EditRLError
from .files import atomic_folder, check_output, temporary_folder, write_text_atomic

REPORT_TO = ("auto", "tensorboard", "wandb", "none")
CONFIG_FILE = "config.yaml"
STATE_FILE = "trainer_state.pt"  # written last into a checkpoint folder of the torch-state trainers


def resolved_config(config: Any) -> dict[str, Any]:
    """The config as plain YAML/JSON types (tuples as lists), with the editrl version that ran it."""
    from . import __version__

    return json.loads(json.dumps({**dataclasses.asdict(config), "editrl_version": __version__}))


def check_run_folder(output_dir: str | Path, resume: bool | str, marker: str, label: str = "output_dir") -> Path:
    """``output_dir`` as a Path if a new run can be written there: a folder that can be created and, unless
    resuming, holds no ``marker`` (the log an earlier run left): starting over there would overwrite its checkpoints
    and mix two runs in one log. The folder is named by the config and ``--resume`` continues it, so it is refused,
    never renamed."""
    path = check_output(output_dir, label, folder=True)
    if not resume and (path / marker).exists():
        raise EditRLError(f"{label} {str(path)!r} already holds a run ({marker}): pass --resume to continue it, "
                          f"or choose another {label} (--set {label}=...)")
    return path


def write_config(config: Any, output_dir: str | Path) -> Path:
    """``output_dir/config.yaml`` (written to a temporary file and renamed: never half written)."""
    path = Path(output_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, yaml.safe_dump(resolved_config(config), sort_keys=False))


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    """``output_dir/checkpoints/step-NNNNNN``: where every trainer keeps the state of ``step``."""
    return Path(output_dir) / "checkpoints" / f"step-{step:06d}"


def list_checkpoints(output_dir: str | Path, marker: str = STATE_FILE) -> list[Path]:
    """Complete checkpoints of ``output_dir`` (those holding ``marker``, the file a trainer writes last),
    oldest first."""
    root = Path(output_dir) / "checkpoints"
    found = [p for p in root.glob("step-*") if p.name[5:].isdigit() and (p / marker).is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[5:]))


def prune_checkpoints(output_dir: str | Path, marker: str, keep: int) -> None:
    """Delete all complete checkpoints but the newest ``keep`` (0 keeps them all), and what killed writes left."""
    root = Path(output_dir) / "checkpoints"
    for old in [*root.glob(".tmp-step-*"), *(list_checkpoints(output_dir, marker)[:-keep] if keep else [])]:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def checkpoint_folder(output_dir: str | Path, step: int, marker: str, keep: int, main: bool = True,
                      barrier: Callable[[], None] = lambda: None) -> Iterator[Path]:
    """The folder to write the checkpoint of ``step`` into: a temporary one that becomes
    ``checkpoint_dir(output_dir, step)`` when the block ends (``files.atomic_folder``), so a kill never
    leaves half a checkpoint; then all but the newest ``keep`` are deleted. Under several processes
    (accelerate's ``save_state`` is collective) every process enters the block, ``main`` on one of them,
    with ``barrier`` = ``accelerator.wait_for_everyone``."""
    final = checkpoint_dir(output_dir, step)
    with atomic_folder(final) if main else nullcontext(temporary_folder(final)) as folder:
        barrier()  # the main process has made the folder
        yield folder
        barrier()  # every process has written its part
    if main:
        prune_checkpoints(output_dir, marker, keep)
    barrier()


def save_checkpoint(output_dir: str | Path, step: int, state: dict[str, Any], config: Any, keep: int,
                    write: Callable[[Path], None] | None = None) -> Path:
    """``checkpoints/step-N/trainer_state.pt`` holding ``state`` and ``config`` (what ``load_checkpoint``
    checks a resume against), plus whatever ``write(folder)`` adds; written atomically, keep-N."""
    import torch

    with checkpoint_folder(output_dir, step, STATE_FILE, keep) as folder:
        if write is not None:
            write(folder)
        torch.save({**state, "config": dataclasses.asdict(config)}, folder / STATE_FILE)
    return checkpoint_dir(output_dir, step)


def load_checkpoint(output_dir: str | Path, config: Any, may_change: Iterable[str],
                    checkpoint: str | Path | None = None) -> tuple[dict[str, Any], Path] | None:
    """(state, folder) of the newest checkpoint of ``output_dir`` (or of ``checkpoint``: a step folder or its
    trainer_state.pt), after checking it was written with ``config`` up to ``may_change``; None if there is none."""
    import torch

    if checkpoint is not None:
        path = Path(checkpoint)
        path = path / STATE_FILE if path.is_dir() else path
        if not path.is_file():
            raise EditRLError(f"--resume {str(checkpoint)!r}: no {STATE_FILE} there (expected a checkpoints/step-N folder)")
    else:
        found = list_checkpoints(output_dir)
        if not found:
            return None
        path = found[-1] / STATE_FILE
    state = torch.load(path, map_location="cpu", weights_only=False)
    check_resume_config(state["config"], config, may_change, where=str(path.parent))
    return state, path.parent


class JsonlLog:
    """An append-only JSONL file of records (each with a ``step``) written by the main process; with an
    ``accelerator`` each record's numbers also go to its trackers, under ``<record[tag]>/<key>`` when ``tag``
    names a field (the reward's ``split``)."""

    def __init__(self, path: str | Path, accelerator=None, tag: str | None = None):
        self.path, self.accelerator, self.tag = Path(path), accelerator, tag
        self.enabled = accelerator is None or accelerator.is_main_process

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        if self.accelerator is not None:
            prefix = f"{record[self.tag]}/" if self.tag else ""
            self.accelerator.log({prefix + key: value for key, value in record.items()
                                  if isinstance(value, (int, float)) and key != "step"}, step=record["step"])

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text().splitlines() if line] if self.path.exists() else []

    def truncate(self, step: int, position: Callable[[dict[str, Any]], int] = lambda record: record["step"]) -> None:
        """Drop the records after ``step`` (a record's place in the run is ``position(record)``, its ``step`` unless a
        trainer counts steps per stage): a resumed run recomputes them."""
        if self.enabled and self.path.exists():
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in self.records() if position(r) <= step))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:  # a section, or a mapping key like rewards: {spec: weight}
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def changed_keys(saved: dict[str, Any], current: dict[str, Any], may_change: Iterable[str] = ()) -> list[str]:
    """Dotted keys whose values differ between two config dicts, except ``may_change`` and the version."""
    a, b = _flatten(saved), _flatten(current)
    ignored = set(may_change) | {"editrl_version"}
    return sorted(k for k in set(a) | set(b) if k not in ignored and a.get(k) != b.get(k))


def check_resume_config(saved: dict[str, Any], config: Any, may_change: Iterable[str], where: str = "--resume") -> None:
    """One-line error naming the keys in which ``config`` differs from a checkpoint's ``saved`` config
    (both compared as JSON would store them: tuples and lists alike).

    A key the config class lists in ``KEYS_ADDED`` (added to editrl after ``saved`` was written) counts in ``saved``
    as the value that behaves as the run did before the key existed, so that run resumes with that value and not
    with a new default that would change it silently."""
    current = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    saved = {**getattr(type(config), "KEYS_ADDED", {}), **saved}
    changed = changed_keys(json.loads(json.dumps(saved, default=str)), current, may_change)
    if changed:
        raise EditRLError(
            f"{where}: written with another config (it differs in {', '.join(changed)}); only "
            f"{', '.join(sorted(may_change))} may change on resume (start a new output folder to change the others)"
        )


def trackers(report_to: str) -> list[str]:
    """accelerate ``log_with`` for a ``report_to`` value; ``auto`` = tensorboard when installed, else none."""
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    if report_to not in REPORT_TO:
        raise EditRLError(f"config key report_to: expected one of {REPORT_TO}, got {report_to!r}")
    available = {"tensorboard": bool(is_tensorboard_available()), "wandb": bool(is_wandb_available())}
    if report_to == "auto":
        return ["tensorboard"] if available["tensorboard"] else []
    if report_to == "none":
        return []
    if not available[report_to]:
        raise EditRLError(f"config key report_to: {report_to} is not installed (pip install {report_to}) or use report_to=none")
    return [report_to]


def tracker_config(config: Any) -> dict[str, Any]:
    """The config flattened to the scalar values trackers accept (lists and dicts as strings)."""
    return {k: v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
            for k, v in _flatten(resolved_config(config)).items()}


def finish_trackers(accelerator) -> None:
    """Close the trackers (flush their files) without ``end_training``, which also tears down the
    process group that the caller may still need."""
    for tracker in accelerator.trackers:
        tracker.finish()


def log_images(accelerator, name: str, image: Image.Image, step: int) -> None:
    """Send an image to every tracker that takes images (tensorboard, wandb)."""
    import numpy as np

    for tracker in accelerator.trackers:
        if hasattr(tracker, "log_images"):
            if tracker.name == "tensorboard":
                tracker.log_images({name: np.asarray(image)}, step=step, dataformats="HWC")
            else:
                tracker.log_images({name: [image]}, step=step)
