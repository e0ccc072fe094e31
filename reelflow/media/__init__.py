"""Pictures, video and sound: made, verified, measured and joined here (PIL and PyAV)."""

import importlib
import os
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from .checks import Expectation, Finding, TakeCheck, Thresholds, check_file, check_take

# Pillow maps fresh memory for every large picture it decodes and hands it back afterwards: of the 8 ms it takes
# to decode a 1280x720 thumbnail, 5 go to page faults. A few freed blocks kept for the next picture (at most 8 of
# Pillow's 16 MB blocks) make the many pictures of a run twice as quick to read. PILLOW_BLOCKS_MAX, if set, stands.
if "PILLOW_BLOCKS_MAX" not in os.environ:
    Image.core.set_blocks_max(8)  # type: ignore[attr-defined]  # (how Pillow applies PILLOW_BLOCKS_MAX itself)

__all__ = ["Expectation", "Finding", "TakeCheck", "Thresholds", "check_file", "check_take"]


def __getattr__(name: str) -> object:
    """The checks' names, imported when first asked for (numpy and PyAV cost a command's start-up 0.3 s)."""
    if name in __all__:
        return getattr(importlib.import_module(".checks", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
