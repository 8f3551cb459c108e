"""Input building: smart_resize, the official prompt strings, token layout."""

from __future__ import annotations

import hashlib

import pytest

from editrl.errors import EditRLError
from editrl.reward import prompts
from editrl.reward.inputs import common_prefix_length, pad_right, smart_resize


def test_smart_resize_rule():
    assert smart_resize(64, 64) == (448, 448)  # up-scaled to exactly 256 merged tokens
    assert smart_resize(1024, 1024) == (448, 448)
    # 1000 x 500: beta = sqrt(500000 / 200704) = 1.578..; floor(633.5 / 28) * 28 = 616, floor(316.8 / 28) * 28 = 308
    assert smart_resize(1000, 500) == (616, 308)
    # 300 x 200 rounds to 308 x 196 = 60368 < min: beta = sqrt(200704 / 60000) = 1.829; ceil(548.7/28)*28 = 560, ceil(365.8/28)*28 = 392
    assert smart_resize(300, 200) == (560, 392)
    assert smart_resize(100, 60, min_pixels=56 * 56, max_pixels=112 * 112) == (112, 56)
    with pytest.raises(EditRLError, match=r"^image: a 3000x10 image; its long side may be at most 200 times its short side$"):
        smart_resize(10, 3000)
    assert smart_resize(10, 2000, min_pixels=56 * 56, max_pixels=56 * 56)[1] > 0  # exactly 200:1 is taken


def test_official_prompt_strings_are_intact():
    text = prompts.EDITREWARD_INSTRUCTION_FOLLOWING + prompts.EDITREWARD_VISUAL_QUALITY + prompts.EDITREWARD_SUFFIX
    # sha256 of the strings in TIGER-AI-Lab/EditReward@edb027e (prompts.py + collator suffix)
    assert hashlib.sha256(text.encode()).hexdigest() == "7767ecd5913897f553ccf6ac036f6fd531d178d13c7cd4aecad4c84f4ebd4e9e"
    assert prompts.EDITREWARD_SUFFIX == "\nPlease provide the overall ratings of this image: <|Reward|>\n\nEND\n"
    rendered = prompts.render_prompt(prompts.resolve_templates("editreward"), "visual_quality", "add a {hat}")
    assert rendered.endswith("Text instruction - add a {hat}\n" + prompts.EDITREWARD_SUFFIX)
    assert "**Visual Quality & Realism**" in rendered


def test_template_validation():
    assert prompts.resolve_templates("world")["suffix"].count("<|Reward|>") == 1
    with pytest.raises(EditRLError, match="exactly once"):
        prompts.resolve_templates({"instruction_following": "{text_prompt}", "visual_quality": "{text_prompt}", "suffix": "none"})
    with pytest.raises(EditRLError, match="missing"):
        prompts.resolve_templates({"instruction_following": "{text_prompt}"})
    with pytest.raises(EditRLError, match="expected one of"):
        prompts.resolve_templates("nope")


def test_token_ids_match_the_processor_and_share_a_prefix(reward, batch):
    sources, instructions, edits = batch
    images, instructions = reward._prepare(sources, instructions, edits)
    image_batch = reward.inputs.images(images)
    assert image_batch.grid_thw[0].tolist() == [1, 4, 4]  # 64x64 -> 56x56 -> 4x4 patches -> 4 tokens
    sequences = reward.inputs.sequences(instructions, image_batch)
    texts = [reward.inputs.text("instruction_following", s) for s in instructions]
    enc = reward.processor(text=texts, images=[reward.inputs.resize(i) for i in images], padding=True, return_tensors="pt",
                           images_kwargs={"do_resize": False})
    ids, mask = pad_right(sequences[0], reward.inputs.tokenizer.pad_token_id)
    assert ids.tolist() == enc["input_ids"].tolist() and mask.tolist() == enc["attention_mask"].tolist()
    for i in range(3):
        shared = common_prefix_length(sequences[0][i], sequences[1][i])
        assert sequences[0][i][:shared].count(reward.inputs.image_token_id) == sum(image_batch.num_tokens[2 * i: 2 * i + 2])
        assert sequences[0][i][-1] == sequences[1][i][-1]  # both end with the generation prompt
