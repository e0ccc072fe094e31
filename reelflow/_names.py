"""Names on disk made from ids: the one rule for folders and files, whoever chose the id.

A name the user chose (a plan, a scene) becomes a folder as it is, so it must be a safe name, and is
refused otherwise. An id someone else chose (a provider's job id, a webhook's event id) may be any
text, so it never becomes a path itself: its file is named by its SHA-256."""

from __future__ import annotations

import hashlib
import re

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SAFE_NAME_RULE = "letters, digits, . _ -; at most 64, starting with a letter or digit"


def is_safe_name(name: str) -> bool:
    """Whether `name` may be a folder or file name as it is: the whole of it matches (a trailing newline
    does not slip through), so it cannot climb out of its folder or hide a control character."""
    return SAFE_NAME.fullmatch(name) is not None


def file_name_for_id(identifier: str, suffix: str = ".json") -> str:
    """The file that holds what is known about a foreign id: the same id, the same name; no id, however
    long or crafted (`../`, NUL, 10,000 characters), names anything else."""
    return hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest() + suffix
