"""Dialects by name: the built-in ones, imported only when used, and any a third party installs.

A package adds a dialect without touching reelflow by declaring an entry point in the group
`reelflow.dialects`, e.g. in its pyproject.toml::

    [project.entry-points."reelflow.dialects"]
    acme-videos = "acme_reelflow:AcmeVideos"

and a profile then selects it with `api: acme-videos`. Code can also call `register_dialect`."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ..errors import ProfileError
from ._base import VideoProvider

ENTRY_POINT_GROUP = "reelflow.dialects"
# name -> "module:Class" (imported on first use) or the class itself
_KNOWN: dict[str, str | type[VideoProvider]] = {
    "openai-videos": "reelflow.providers.openai_videos:OpenAIVideos",
    "openrouter-videos": "reelflow.providers.openrouter_videos:OpenRouterVideos",
    "google-genai": "reelflow.providers.google_genai:GoogleGenAI",
    "fal-queue": "reelflow.providers.fal_queue:FalQueue",
}
_INSTALL_HINTS = {"openai-videos": "openai", "openrouter-videos": "openrouter", "google-genai": "google-genai",
                  "fal-queue": "fal-client"}
_entry_points_read = False


def register_dialect(name: str, target: str | type[VideoProvider], *, clobber: bool = False) -> None:
    """Make `name` a dialect: a class, or "module:Class" imported when first used."""
    if name in _KNOWN and not clobber and _KNOWN[name] != target:
        raise ValueError(f"dialect {name!r} is already registered (pass clobber=True to replace it)")
    _KNOWN[name] = target


def known_dialects() -> list[str]:
    _read_entry_points()
    return sorted(_KNOWN)


def dialect(name: str) -> type[VideoProvider]:
    """The class of dialect `name`, imported now if it was not yet."""
    if name not in _KNOWN:
        _read_entry_points()
    target = _KNOWN.get(name)
    if target is None:
        raise ProfileError(f"unknown provider dialect {name!r} (known: {', '.join(known_dialects())}); a dialect "
                           f"of another package joins through the {ENTRY_POINT_GROUP!r} entry-point group")
    if isinstance(target, str):
        target = _imported(name, target)
        _KNOWN[name] = target
    return target


def _imported(name: str, target: str) -> type[VideoProvider]:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        package = _INSTALL_HINTS.get(name, e.name or module_name)
        raise ProfileError(f"provider dialect {name!r} needs a package that is not installed ({e.name}): "
                           f"pip install {package}") from e
    try:
        found: type[VideoProvider] = getattr(module, attribute)
    except AttributeError as e:
        raise ProfileError(f"provider dialect {name!r}: {module_name} has no {attribute!r}") from e
    return found


def _read_entry_points() -> None:
    global _entry_points_read
    if _entry_points_read:
        return
    for point in entry_points(group=ENTRY_POINT_GROUP):
        _KNOWN.setdefault(point.name, point.value)
    _entry_points_read = True
