"""Test-time scaling: editor adapters, best-of-N and pruned search.

Import the pieces from here: ``load_editor`` / ``EDITORS`` (editor adapters), ``best_of_n`` and
``BestOfNResult``, ``run_search`` / ``HalvingConfig`` (pruning on x0 previews).
"""

from .best_of_n import BestOfNResult, best_of_n
from .editors import EDITORS, EditCondition, Editor, SampleResult, load_editor
from .search import Candidate, HalvingConfig, SearchResult, run_search
from .selection import SELECT_RULES, selection_values

__all__ = [
    "EDITORS", "BestOfNResult", "Candidate", "EditCondition", "Editor", "HalvingConfig", "SELECT_RULES", "SampleResult",
    "SearchResult", "best_of_n", "load_editor", "run_search", "selection_values",
]
