import numpy as np
import pytest
from PIL import Image

from editrl.errors import EditRLError
from editrl.images import check_instruction, load_image


def test_modes_become_rgb_with_expected_pixels(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent -> white background
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(Image.new("L", (4, 4), 100)).getpixel((1, 1)) == (100, 100, 100)
    assert load_image(Image.new("CMYK", (4, 4), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    sixteen = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert load_image(sixteen).getpixel((0, 0)) == (255, 255, 255)
    path = tmp_path / "a.png"
    Image.new("RGB", (5, 3), (1, 2, 3)).save(path)
    image = load_image(str(path))
    assert image.size == (5, 3) and image.getpixel((0, 0)) == (1, 2, 3)
    assert load_image(path.read_bytes()).getpixel((4, 2)) == (1, 2, 3)


def test_arrays_float_and_chw():
    hwc = np.zeros((6, 5, 3), dtype=np.float32)
    hwc[..., 1] = 1.0
    assert load_image(hwc).getpixel((0, 0)) == (0, 255, 0)
    chw = np.moveaxis(np.full((6, 5, 3), 7, dtype=np.uint8), -1, 0)
    image = load_image(chw)
    assert image.size == (5, 6) and image.getpixel((0, 0)) == (7, 7, 7)


def test_bad_inputs_name_the_input(tmp_path):
    with pytest.raises(EditRLError, match=r"edits\[2\]: no image file"):
        load_image(tmp_path / "missing.png", "edits[2]")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(EditRLError, match="source: .*not a readable image"):
        load_image(bad, "source")
    with pytest.raises(EditRLError, match=r"\[0, 1\]"):
        load_image(np.full((4, 4, 3), -1.0), "x")
    with pytest.raises(EditRLError, match="instructions\\[1\\]: expected a non-empty"):
        check_instruction("  ", "instructions[1]")


def test_reward_output_select_and_records():
    import torch

    from editrl.reward import RewardOutput

    out = RewardOutput(mu=torch.tensor([[1.0, 2.0], [3.0, 4.0]]), sigma=torch.ones(2, 2), score=torch.tensor([1.5, 3.5]),
                       score_sigma=torch.zeros(2))
    one = out.select(1)
    assert len(one) == 1 and one.mu.tolist() == [[3.0, 4.0]] and one.score.tolist() == [3.5]
    both = RewardOutput.cat([out.select(1), out.select(0)])
    assert both.score.tolist() == [3.5, 1.5]
    assert out.to_records()[0] == {"score": 1.5, "score_sigma": 0.0, "mu_instruction_following": 1.0,
                                   "sigma_instruction_following": 1.0, "mu_visual_quality": 2.0, "sigma_visual_quality": 1.0}
