"""The run ``editrl best-of-n`` and ``editrl demo`` make when given no flags, in one place so that the page and the
command line show the same thing for the same seed.

The shipped world editor, the world description judge (``world-describe``: the shipped world EditReward rejects
deletions but not yet the finer wrong edits, and its best-of-8 keeps no more exact edits than one sample; see
docs/world_results.md), N = 8 candidates from seed 0, on the built-in world example (``editrl.world.examples.builtin_example``,
the page's first example too); under these defaults the edit kept is exactly right (``tests/demo`` checks it as the
page runs it). The selected candidate's frame colour is ``editrl.sampler.contact_sheet.BEST`` for the contact sheet
and the page alike. Only names here: nothing is imported, so parsing stays fast and no layer below is loaded.
"""

EDITOR = "world"
REWARD = "world-describe"
N = 8
SEED = 0
