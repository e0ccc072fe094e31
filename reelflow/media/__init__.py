"""Pictures, video and sound: made, verified, measured and joined here (PIL and PyAV)."""

import os

from PIL import Image

# Pillow maps fresh memory for every large picture it decodes and hands it back afterwards: of the 8 ms it takes
# to decode a 1280x720 thumbnail, 5 go to page faults. A few freed blocks kept for the next picture (at most 8 of
# Pillow's 16 MB blocks) make the many pictures of a run twice as quick to read. PILLOW_BLOCKS_MAX, if set, stands.
if "PILLOW_BLOCKS_MAX" not in os.environ:
    Image.core.set_blocks_max(8)  # type: ignore[attr-defined]  # (how Pillow applies PILLOW_BLOCKS_MAX itself)
