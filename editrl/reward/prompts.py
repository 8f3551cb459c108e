"""Prompt templates: the text the reward model reads around the two images.

The ``editreward`` set is data, not code: the exact strings the released EditReward checkpoints were
trained with, so they are part of those checkpoints' interface and must not be edited. They are
reproduced from the official repository TIGER-AI-Lab/EditReward at commit edb027e
(``EditReward/dataset/prompts.py``: INSTRUCTION_EDIT_FOLLOWING and INSTRUCTION_EDIT_QUALITY;
``EditReward/dataset/data_collator_qwen_edit.py``: ``prompt_with_special_token``, the suffix).
They are written line by line so that the trailing double spaces (Markdown line breaks) survive.

The ``world`` set is a few words per dimension for the tiny world reward model, whose tokenizer
knows only the world's words (a byte-level one would spend one token per character). Any other model
can bring its own dict of templates.
"""

from __future__ import annotations

from typing import Mapping

from ..errors import EditRLError
from .output import DIMENSIONS

# official: INSTRUCTION_EDIT_FOLLOWING (head_0, instruction following)
EDITREWARD_INSTRUCTION_FOLLOWING = (
    '\n'
    'You are tasked with evaluating an edited image **in comparison with the original source image** based on **Instruction Following & Semantic Fidelity**, and assigning a score from 1 to 4, with 1 being the worst and 4 being the best.  \n'
    'This dimension focuses on how accurately, completely, and exclusively the model executed the given text instruction.\n'
    '\n'
    '**Inputs Provided:**  \n'
    '- Source Image (before editing)  \n'
    '- Edited Image (after applying the instruction)  \n'
    '- Text Instruction  \n'
    '\n'
    '**Sub-Dimensions to Evaluate:**\n'
    '\n'
    '- **Semantic Accuracy:**  \n'
    '  Assess whether the edited content accurately captures the semantics of the instruction. The edited result should precisely match the intended meaning. For example, if the instruction is "replace apples with oranges," the object must clearly be oranges, not other fruits.\n'
    '\n'
    '- **Completeness of Editing:**  \n'
    '  Check whether **all parts** of the instruction are fully executed. For multi-step edits (e.g., "replace a red car with a blue bicycle"), both the color change and the object replacement must be done without omissions.\n'
    '\n'
    '- **Exclusivity of Edit (No Over-Editing):**  \n'
    '  Ensure that only the requested parts are changed. The rest of the image (as seen in the source) should remain unaltered. For example, if the instruction only involves replacing an object, the background, lighting, and unrelated objects should not be unnecessarily modified.\n'
    '\n'
    '**Scoring Criteria:**\n'
    '- **4 (Very Good):** Perfectly accurate, complete, and exclusive execution of the instruction.  \n'
    '- **3 (Relatively Good):** Largely correct, but with minor omissions or slight over-editing.  \n'
    '- **2 (Relatively Poor):** Major misinterpretation, incomplete edits, or noticeable unintended changes.  \n'
    '- **1 (Very Poor):** Instruction ignored or completely wrong execution.\n'
    '\n'
    'Text instruction - {text_prompt}\n'
)

# official: INSTRUCTION_EDIT_QUALITY (head_1, visual quality)
EDITREWARD_VISUAL_QUALITY = (
    '\n'
    'You are tasked with evaluating an edited image **in comparison with the original source image** based on **Visual Quality & Realism**, and assigning a score from 1 to 4, with 1 being the worst and 4 being the best.  \n'
    'This dimension focuses on how realistic, artifact-free, and aesthetically appealing the edited image is, while remaining consistent with the source image.\n'
    '\n'
    '**Inputs Provided:**  \n'
    '- Source Image (before editing)  \n'
    '- Edited Image (after applying the instruction)  \n'
    '- Text Instruction  \n'
    '\n'
    '**Sub-Dimensions to Evaluate:**\n'
    '\n'
    '- **Plausibility & Physical Consistency:**  \n'
    '  Check whether the edit aligns with the laws of physics and the scene context. Lighting, shadows, reflections, perspective, size, and interactions with the environment should all appear natural compared to the source image.\n'
    '\n'
    '- **Artifact-Free Quality:**  \n'
    '  Look for technical flaws such as blur, distortions, pixel misalignment, unnatural textures, or seams around edited regions. High-quality results should be free from such visible artifacts.\n'
    '\n'
    '- **Aesthetic Quality:**  \n'
    '  Evaluate the overall harmony and visual appeal. The image should look natural, balanced, and pleasant. Colors, composition, and atmosphere should enhance the image rather than degrade it.\n'
    '\n'
    '**Scoring Criteria:**\n'
    '- **4 (Very Good):** Perfectly realistic, artifact-free, seamless, and aesthetically pleasing.  \n'
    '- **3 (Relatively Good):** Mostly realistic and clean, with only minor flaws that do not significantly distract.  \n'
    '- **2 (Relatively Poor):** Noticeable physical inconsistencies or visible artifacts that make the edit unnatural.  \n'
    '- **1 (Very Poor):** Severe artifacts, incoherent composition, or visually unusable result.\n'
    '\n'
    'Text instruction - {text_prompt}\n'
)

# official: prompt_with_special_token, appended after the dimension prompt
EDITREWARD_SUFFIX = '\nPlease provide the overall ratings of this image: <|Reward|>\n\nEND\n'

TEMPLATE_SETS: dict[str, dict[str, str]] = {
    "editreward": {
        "instruction_following": EDITREWARD_INSTRUCTION_FOLLOWING,
        "visual_quality": EDITREWARD_VISUAL_QUALITY,
        "suffix": EDITREWARD_SUFFIX,
    },
    # short prompts for the tiny world model; the same structure and the same reward suffix
    "world": {
        "instruction_following": "follow: {text_prompt}",
        "visual_quality": "quality: {text_prompt}",
        "suffix": " <|Reward|>",
    },
    # the world VLM's own question for instruction following (its `verify` pretraining prompt: what differs
    # between the instruction's target and the edit), so the reward token reads the comparison it was taught
    "world-verify": {
        "instruction_following": "apply: {text_prompt} compare",
        "visual_quality": "quality: {text_prompt}",
        "suffix": " <|Reward|>",
    },
}


def resolve_templates(templates: str | Mapping[str, str], reward_token: str = "<|Reward|>") -> dict[str, str]:
    """The template dict for a name (``TEMPLATE_SETS``: "editreward", "world", "world-verify") or a user dict.

    A dict needs one template per dimension (each with a ``{text_prompt}`` field) and a ``suffix``
    holding the reward token exactly once; the reward is read at that token.
    """
    if isinstance(templates, str):
        if templates not in TEMPLATE_SETS:
            raise EditRLError(f"templates={templates!r}: expected one of {sorted(TEMPLATE_SETS)} or a dict of templates")
        resolved = dict(TEMPLATE_SETS[templates])
    else:
        resolved = dict(templates)
    missing = [key for key in (*DIMENSIONS, "suffix") if key not in resolved]
    if missing:
        raise EditRLError(f"templates: missing {missing}; expected keys {list(DIMENSIONS)} and 'suffix'")
    for dim in DIMENSIONS:
        if "{text_prompt}" not in resolved[dim]:
            raise EditRLError(f"templates[{dim!r}] must contain the field {{text_prompt}} for the instruction")
    if resolved["suffix"].count(reward_token) != 1 or any(reward_token in resolved[dim] for dim in DIMENSIONS):
        raise EditRLError(f"templates: the suffix must contain the reward token {reward_token!r} exactly once, and the dimension templates must not")
    return resolved


def render_prompt(templates: Mapping[str, str], dimension: str, instruction: str) -> str:
    """The user text for one dimension: the dimension template with the instruction, then the suffix."""
    return templates[dimension].format(text_prompt=instruction) + templates["suffix"]
