"""The shipped world editor's registry entry: FLUX.1-Kontext loaded from ``editrl/world/models/editor/``."""

from __future__ import annotations

from pathlib import Path

from ..sampler.editors import EditorSpec

WORLD_EDITOR_DIR = Path(__file__).resolve().parent / "models" / "editor"
WORLD_SCOPE = ("knows only the editing world's 64 px toy scenes (flat shapes on a plain background) and its "
               "instruction words (editrl.world.instructions.vocabulary())")
WORLD_EDITOR = EditorSpec("flux_kontext:FluxKontextEditor", "FluxKontextPipeline", str(WORLD_EDITOR_DIR),
                          (("resolution", 64), ("default_steps", 8), ("default_guidance", 2.5)), scope=WORLD_SCOPE)
