"""Editor adapters over diffusers pipelines, registered by name.

``load_editor(name, model=...)`` builds an adapter from a Hugging Face id (already in the local
cache: nothing is downloaded) or a local ``save_pretrained`` folder; ``EDITORS`` maps each name to
its adapter class, pipeline class and default model. The world registers ``world`` (FLUX.1-Kontext
loaded from the tiny editor it ships) through ``editrl.registry``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ...errors import EditRLError
from ...files import check_input, check_model_source
from ...loading import quiet_loading
from ...registry import EDITORS
from .base import EditCondition, Editor, SampleResult, denoise, euler_step, seed_generators
from .flux_kontext import FluxKontextEditor

logger = logging.getLogger(__name__)

EDITOR_SETTINGS_FILE = "editrl_editor.json"
"""Optional file in a pipeline folder with adapter settings (``resolution``, ``default_steps``,
``default_guidance``): the world editor records the resolution and steps it was trained for."""


@dataclass(frozen=True)
class EditorSpec:
    """A registry entry: the adapter (``module:Class`` in this package, imported on use), the diffusers
    pipeline class name, the default model, default adapter settings and, for a toy model, the ``scope``
    of what it knows (shown beside its outputs)."""

    adapter: str
    pipeline: str
    default_model: str
    settings: tuple[tuple[str, object], ...] = ()
    scope: str | None = None

    def adapter_class(self) -> type[Editor]:
        module, cls = self.adapter.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


PIPELINE_EDITORS = {
    "flux-kontext": EditorSpec("flux_kontext:FluxKontextEditor", "FluxKontextPipeline", "black-forest-labs/FLUX.1-Kontext-dev"),
    "qwen-image-edit": EditorSpec("qwen_image_edit:QwenImageEditEditor", "QwenImageEditPipeline", "Qwen/Qwen-Image-Edit"),
    "qwen-image-edit-plus": EditorSpec(
        "qwen_image_edit:QwenImageEditPlusEditor", "QwenImageEditPlusPipeline", "Qwen/Qwen-Image-Edit-2509"
    ),
    "qwen-image-edit-2511": EditorSpec(
        "qwen_image_edit:QwenImageEditPlusEditor", "QwenImageEditPlusPipeline", "Qwen/Qwen-Image-Edit-2511",
        (("default_steps", 40),),
    ),
    "flux2": EditorSpec("flux2:Flux2Editor", "Flux2Pipeline", "black-forest-labs/FLUX.2-dev"),
    "flux2-klein": EditorSpec("flux2:Flux2KleinEditor", "Flux2KleinPipeline", "black-forest-labs/FLUX.2-klein-4B"),
    "longcat-image-edit": EditorSpec(
        "longcat_image_edit:LongCatImageEditEditor", "LongCatImageEditPipeline", "meituan-longcat/LongCat-Image-Edit"
    ),
    "instruct-pix2pix": EditorSpec(
        "instruct_pix2pix:InstructPix2PixEditor", "StableDiffusionInstructPix2PixPipeline", "timbrooks/instruct-pix2pix"
    ),
}
"""The adapters of public diffusers pipelines (other names, such as ``world``, are registered from above)."""
EDITORS.update(PIPELINE_EDITORS)
SPEC_BY_PIPELINE = {spec.pipeline: spec for spec in PIPELINE_EDITORS.values()}
"""The diffusers pipelines a folder given as the editor name may hold."""


def default_device_dtype(device: str | torch.device | None, dtype: torch.dtype | None) -> tuple[torch.device, torch.dtype]:
    """CUDA in bf16 when available, else CPU in fp32."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return device, dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)


def pipeline_class(pipeline_name: str) -> type:
    """The diffusers pipeline class of that name (imported, nothing loaded)."""
    import diffusers

    with quiet_loading():  # importing a pipeline imports its transformers processors (torchvision notices)
        return getattr(diffusers, pipeline_name)


def check_lora_trainable(pipeline: type, label: str) -> None:
    """One line if the pipeline class cannot save LoRA weights: a LoRA trained on it could never be saved or
    loaded (LongCat-Image-Edit), so RL refuses it."""
    if not hasattr(pipeline, "save_lora_weights"):
        raise EditRLError(f"{label}: its {pipeline.__name__} cannot save or load LoRA weights, so RL cannot train it "
                          "(use it for best-of-n)")


def _load_pipeline(pipeline_name: str, model: str, label: str, dtype: torch.dtype, **kwargs):
    pipeline_cls = pipeline_class(pipeline_name)
    local = Path(model).expanduser()
    if local.is_dir() and not (local / "model_index.json").is_file():
        raise EditRLError(f"{label}: {str(local)!r} is not a diffusers pipeline folder (no model_index.json)")
    source = str(local) if local.is_dir() else model
    try:
        with quiet_loading():
            pipe = pipeline_cls.from_pretrained(source, dtype=dtype, local_files_only=True, **kwargs)
    except (OSError, ValueError) as err:  # hub "not cached" errors are OSError/ValueError subclasses
        if local.is_dir():
            raise EditRLError(f"{label}: could not load the {pipeline_name} in {str(local)!r}: {err}") from None
        raise EditRLError(
            f"{label}: model {model!r} is not available offline; download it first with "
            f"`hf download {model}` (accept its license on huggingface.co if it is gated) or pass --model LOCAL_FOLDER"
        ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _folder_settings(model: str, adapter_class: type) -> dict:
    """Settings saved beside a pipeline: any keyword option of the adapter's constructor."""
    path = Path(model) / EDITOR_SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EditRLError(f"{path}: not valid JSON ({err})") from None
    allowed = set(inspect.signature(adapter_class.__init__).parameters) - {"self", "pipe"}
    if not isinstance(settings, dict) or set(settings) - allowed:
        raise EditRLError(f"{path}: expected a JSON object with keys among {sorted(allowed)}")
    return settings


def check_editor(
    name: str, model: str | None = None, lora: str | None = None, labels: tuple[str, str, str] = ("--editor", "--model", "--lora")
) -> tuple[EditorSpec, str]:
    """The spec and model an editor would load, checked without loading anything; one line naming the flag
    (``labels``: the names of ``name``, ``model`` and ``lora`` to the user) otherwise. ``name`` is a registered
    editor (an unknown one lists them and suggests the closest) or a diffusers pipeline folder of a supported
    pipeline; ``model`` is an existing path or a Hugging Face id, ``lora`` an existing path."""
    name_label, model_label, lora_label = labels
    if Path(str(name)).expanduser().is_dir() and name not in EDITORS:
        folder = Path(str(name)).expanduser()
        index = folder / "model_index.json"
        if not index.is_file():
            raise EditRLError(f"{name_label} {name!r}: not a diffusers pipeline folder (no model_index.json)")
        pipeline_name = json.loads(index.read_text()).get("_class_name", "")
        if pipeline_name not in SPEC_BY_PIPELINE:
            raise EditRLError(f"{name_label} {name!r}: holds a {pipeline_name or 'unknown'} pipeline; supported: {sorted(SPEC_BY_PIPELINE)}")
        spec = EditorSpec(SPEC_BY_PIPELINE[pipeline_name].adapter, pipeline_name, str(folder))
        model = model or str(folder)
    else:
        if str(name).startswith((".", "~", "/")) or "/" in str(name):  # a path, not a name: no list of names to offer
            check_input(name, name_label)
        EDITORS.check(name, name_label, ", or a diffusers pipeline folder")
        spec = EDITORS[name]
    if model is not None:
        check_model_source(model, model_label)
    if lora is not None:  # a local folder or file: ``Editor.load_lora`` loads nothing else
        check_input(lora, lora_label)
    model = str(model or spec.default_model)
    shipped = Path(spec.default_model)
    if model == spec.default_model and shipped.is_absolute() and not (shipped / "model_index.json").is_file():
        raise EditRLError(
            f"{name_label} {name}: the shipped {name} editor is missing from {shipped} "
            f"(reinstall editrl from a complete clone, or pass {model_label} with a {spec.pipeline} folder)"
        )
    return spec, model


def load_editor(
    name: str = "world",
    model: str | None = None,
    lora: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    **settings,
) -> Editor:
    """Build the editor ``name`` (a registry name, or a local pipeline folder) on ``device``.

    ``model`` overrides the default Hugging Face id or folder; ``lora`` loads diffusers-format LoRA
    weights on top; ``settings`` (``resolution``, ``default_steps``, ``default_guidance``, ...)
    override the per-model defaults.
    """
    spec, model = check_editor(name, model, lora, labels=("editor", "model", "lora"))
    device, dtype = default_device_dtype(device, dtype)
    adapter_class = spec.adapter_class()
    pipe = _load_pipeline(spec.pipeline, model, f"editor {name}", dtype, **adapter_class.pipeline_kwargs).to(device)
    options = {**dict(spec.settings), **(_folder_settings(model, adapter_class) if Path(model).is_dir() else {}), **settings}
    editor = adapter_class(pipe, **options)
    if lora:
        editor.load_lora(lora)
    editor.origin = {"editor": name, "model": model, "lora": lora}  # recorded in best-of-N outputs
    if spec.scope:
        editor.scope = spec.scope
    logger.info("loaded editor %s from %s: %r", name, model, editor)
    return editor


__all__ = [
    "EDITORS", "EditCondition", "Editor", "EditorSpec", "check_editor", "FluxKontextEditor", "SampleResult", "load_editor",
    "seed_generators", "default_device_dtype", "denoise", "euler_step",
]
