"""A procedural editing world with an exact oracle, simulated annotators and shipped tiny models.

``make_examples`` gives (source, instruction, target) triples; ``Oracle`` scores any edit of a world
source on instruction following and visual quality (a ``RewardFunction``); ``AnnotatorPanel``
simulates human Likert raters; ``editrl.world.datasets`` writes EditReward-Data / EditReward-Bench
Parquet files.

Importing the package registers the world's names (``registration``) and nothing heavier: the names below load
on first use (``editrl.registry.lazy_exports``), so a command can check ``--reward wrold`` without torch.
"""

from ..registry import lazy_exports
from . import registration  # noqa: F401  (registers the world's editor, reward and prompt names)

_EXPORTS = {
    "AnnotatorPanel": "annotators", "krippendorff_alpha": "annotators", "WorldExample": "examples",
    "make_examples": "examples", "Edit": "instructions", "parse_instruction": "instructions", "Oracle": "oracle",
    "OracleConfig": "oracle", "load_world_reward": "reward", "Scene": "scenes", "WorldObject": "scenes",
    "parse_scene": "scenes", "render": "scenes",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
