"""Dialects by name: one entry each, for the built-in ones and any a third party installs; every other list of
dialects (the sandbox's poses, the contract's profiles) is derived from these entries.

A package adds a dialect without touching reelflow by declaring an entry point in the group
`reelflow.dialects`, e.g. in its pyproject.toml::

    [project.entry-points."reelflow.dialects"]
    acme-videos = "acme_reelflow:AcmeVideos"

and a profile then selects it with `api: acme-videos`. Code can also call `register_dialect`.

Nothing here imports a dialect, its SDK or the sandbox: each is imported on first use."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any

from ..errors import ProfileError
from ._base import VideoProvider

ENTRY_POINT_GROUP = "reelflow.dialects"


@dataclass(frozen=True)
class DialectEntry:
    """A dialect as the registry knows it: its class ("module:Class", imported on first use, or the class), the
    package its SDK comes in, the sandbox pose that speaks it ("module:Class"; None: the sandbox cannot pose as
    it), and a profile that speaks it, which its contract runs against."""

    name: str
    target: str | type[VideoProvider]
    install: str | None = None
    pose: str | None = None
    profile: str | None = None


_ENTRIES: dict[str, DialectEntry] = {entry.name: entry for entry in (
    DialectEntry("openai-videos", "reelflow.providers.openai_videos:OpenAIVideos", "openai",
                 "reelflow.sandbox._openai:OpenAIPose", "sandbox"),
    DialectEntry("openrouter-videos", "reelflow.providers.openrouter_videos:OpenRouterVideos", "openrouter",
                 "reelflow.sandbox._openrouter:OpenRouterPose", "openrouter"),
    DialectEntry("google-genai", "reelflow.providers.google_genai:GoogleGenAI", "google-genai",
                 "reelflow.sandbox._google:GooglePose", "google-vertex"),
    DialectEntry("google-interactions", "reelflow.providers.google_interactions:GoogleInteractions", "google-genai",
                 "reelflow.sandbox._interactions:InteractionsPose", "gemini-omni"),
    DialectEntry("fal-queue", "reelflow.providers.fal_queue:FalQueue", "fal-client",
                 "reelflow.sandbox._fal:FalPose", "fal"),
)}
_entry_points_read = False


def register_dialect(name: str, target: str | type[VideoProvider], *, clobber: bool = False,
                     pose: str | None = None, profile: str | None = None) -> None:
    """Make `name` a dialect: a class, or "module:Class" imported when first used; with a sandbox `pose` that
    speaks it and a `profile` its contract runs against, where it has them."""
    known = _ENTRIES.get(name)
    if known is not None and not clobber and known.target != target:
        raise ValueError(f"dialect {name!r} is already registered (pass clobber=True to replace it)")
    _ENTRIES[name] = DialectEntry(name, target, pose=pose, profile=profile)


def dialect_entries() -> list[DialectEntry]:
    """Every dialect known: the built-in ones, those registered, and those installed through the entry points."""
    _read_entry_points()
    return [_ENTRIES[name] for name in sorted(_ENTRIES)]


def known_dialects() -> list[str]:
    return [entry.name for entry in dialect_entries()]


def posed_dialects() -> list[str]:
    """The dialects the sandbox can pose as."""
    return [entry.name for entry in dialect_entries() if entry.pose]


def dialect(name: str) -> type[VideoProvider]:
    """The class of dialect `name`, imported now if it was not yet."""
    entry = _entry(name)
    if isinstance(entry.target, str):
        loaded: type[VideoProvider] = _imported(entry, entry.target)
        _ENTRIES[name] = replace(entry, target=loaded)
        return loaded
    return entry.target


def pose_of(name: str) -> Any:
    """The sandbox pose class that speaks dialect `name` (ProfileError when there is none)."""
    entry = _entry(name)
    if entry.pose is None:
        raise ProfileError(f"the sandbox cannot pose as dialect {name!r} (it poses as {', '.join(posed_dialects())})")
    return _imported(entry, entry.pose)


def _entry(name: str) -> DialectEntry:
    if name not in _ENTRIES:
        _read_entry_points()
    entry = _ENTRIES.get(name)
    if entry is None:
        raise ProfileError(f"unknown provider dialect {name!r} (known: {', '.join(known_dialects())}); a dialect "
                           f"of another package joins through the {ENTRY_POINT_GROUP!r} entry-point group")
    return entry


def _imported(entry: DialectEntry, target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        package = entry.install or e.name or module_name
        raise ProfileError(f"provider dialect {entry.name!r} needs a package that is not installed ({e.name}): "
                           f"pip install {package}") from e
    try:
        return getattr(module, attribute)
    except AttributeError as e:
        raise ProfileError(f"provider dialect {entry.name!r}: {module_name} has no {attribute!r}") from e


def _read_entry_points() -> None:
    global _entry_points_read
    if _entry_points_read:
        return
    for point in entry_points(group=ENTRY_POINT_GROUP):
        _ENTRIES.setdefault(point.name, DialectEntry(point.name, point.value))
    _entry_points_read = True
