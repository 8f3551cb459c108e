"""Dependencies point one way (world -> rl -> sampler -> reward): a layer never loads a layer above it.

Each check imports a package in a fresh interpreter and lists the editrl packages that came with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ABOVE = {
    "editrl.reward": ["editrl.world", "editrl.sampler", "editrl.rl", "editrl.tiny"],
    "editrl.sampler": ["editrl.world", "editrl.rl", "editrl.tiny"],
    "editrl.rl": ["editrl.world", "editrl.tiny"],
}


def loaded_after(code: str) -> set[str]:
    """The editrl modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('editrl'))))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_a_layer_does_not_load_the_layers_above(package):
    loaded = loaded_after(f"import {package}")
    assert package in loaded
    assert not {m for m in loaded for above in ABOVE[package] if m == above or m.startswith(above + ".")}


def test_the_reward_client_needs_no_fastapi():
    loaded = loaded_after(
        "import sys\nsys.modules['fastapi'] = None  # any import of fastapi now raises ImportError\n"
        "from editrl.reward.client import RemoteReward\nRemoteReward('http://127.0.0.1:9')\n"
        "from editrl.reward.specs import build_reward\nbuild_reward('openai:http://127.0.0.1:9/v1#model=m')"
    )
    assert "editrl.reward.client" in loaded and "editrl.reward.judge" in loaded
    assert not {"editrl.reward.serve", "editrl.reward.chat_api", "editrl.world"} & loaded


def test_world_names_resolve_without_importing_the_world_first():
    """`--editor world`, `--reward oracle` and RL `data: world` work from code that never imported editrl.world."""
    loaded = loaded_after(
        "from editrl.reward.specs import build_reward\n"
        "from editrl.sampler.editors import EDITORS\n"
        "from editrl.rl.trainer import load_prompts\n"
        "assert type(build_reward('oracle')).__name__ == 'Oracle'\n"
        "assert EDITORS['world'].pipeline == 'FluxKontextPipeline' and EDITORS['world'].scope\n"
        "assert len(load_prompts('world', 3, 'test', 0, 64)) == 3"
    )
    assert "editrl.world" in loaded


def test_world_imported_before_the_sampler_registers_the_same_editor():
    loaded_after("import editrl.world\nfrom editrl.sampler.editors import EDITORS, SPEC_BY_PIPELINE\n"
                 "assert EDITORS['world'].default_model.endswith('editor') and 'world' not in SPEC_BY_PIPELINE")


def test_no_module_below_the_world_names_it():
    """Source check: reward, sampler and rl never import the world or tiny, even lazily inside a function."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "editrl"
    offenders = []
    for layer, banned in (("reward", ("world", "sampler", "rl", "tiny")), ("sampler", ("world", "rl", "tiny")),
                          ("rl", ("world", "tiny"))):
        for path in (root / layer).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                text = line.strip()
                if text.startswith(("from ", "import ")) and any(
                    f"editrl.{name}" in text or f"..{name}" in text.split(" import")[0] for name in banned
                ):
                    offenders.append(f"{path.relative_to(root)}:{number}: {text}")
    assert offenders == []
