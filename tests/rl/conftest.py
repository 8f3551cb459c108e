import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))  # toys.py, importable by subprocesses too


@pytest.fixture
def tiny_editor():
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.tiny import tiny_flux_kontext

    return FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=4)


@pytest.fixture
def prompts():
    return [
        (Image.new("RGB", (64, 64), (120, 30, 200)), "make the square red"),
        (Image.new("RGB", (64, 64), (10, 200, 40)), "move the circle left"),
    ]


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory):
    """A tiny FluxKontextPipeline saved as a folder: what `editor:` in a config points at in CLI tests."""
    from editrl.tiny import tiny_flux_kontext

    path = tmp_path_factory.mktemp("tiny-kontext")
    tiny_flux_kontext().save_pretrained(path)
    (path / "editrl_editor.json").write_text('{"resolution": 64, "default_steps": 3}')  # load_editor's folder settings
    return path
