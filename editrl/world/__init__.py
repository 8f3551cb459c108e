"""A procedural editing world with an exact oracle, simulated annotators and shipped tiny models.

``make_examples`` gives (source, instruction, target) triples; ``Oracle`` scores any edit of a world
source on instruction following and visual quality (a ``RewardFunction``); ``AnnotatorPanel``
simulates human Likert raters; ``editrl.world.datasets`` writes EditReward-Data / EditReward-Bench
Parquet files.
"""

from . import registration  # noqa: F401  (registers the world's editor, reward and prompt names)
from .annotators import AnnotatorPanel, krippendorff_alpha
from .examples import WorldExample, make_examples
from .instructions import Edit, parse_instruction
from .oracle import Oracle, OracleConfig
from .reward import load_world_reward
from .scenes import Scene, WorldObject, parse_scene, render

__all__ = [
    "AnnotatorPanel", "Edit", "Oracle", "OracleConfig", "Scene", "WorldExample", "WorldObject",
    "krippendorff_alpha", "load_world_reward", "make_examples", "parse_instruction", "parse_scene", "render",
]
