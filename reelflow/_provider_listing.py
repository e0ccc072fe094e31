"""`reelflow providers` as tables: every profile in a short list that fits 100 columns, or one profile in full."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .profiles import LABELS
from .providers import key_variables, picking

if TYPE_CHECKING:
    from rich.table import Table

    from .profiles import ModelLimits, ProviderProfile


def short_list(profiles: list[ProviderProfile], active: str | None, title: str) -> Table:
    """Name, dialect, the variables that make it real, and a few words: one row each."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", caption="`reelflow providers NAME`: one profile's models, "
                  "limits and features", caption_justify="left", box=box.SIMPLE_HEAD)
    for column in ("profile", "dialect", "key", "about"):
        table.add_column(column, no_wrap=column != "about")
    for profile in profiles:
        key = picking(profile).replace(" or ", "\nor ").replace(" with ", "\nwith ")
        about = profile.description.partition(" (")[0] + (" (shut down)" if profile.shut_down else "")
        table.add_row(("* " if profile.name == active else "") + profile.name, profile.api, key, about)
    return table


def detail(profile: ProviderProfile) -> Table:
    """One profile: what it is, where its credentials are found, each model's sizes and lengths, how scenes
    continue, what it can do, what it downloads."""
    from rich.table import Table

    table = Table(title=f"{profile.name}: {profile.description}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    credentials = profile.credentials
    rows = {"dialect": profile.api, "key": " or ".join(key_variables(profile)),
            "base URL": f"{profile.base_url or '-'} (over it: REELFLOW_BASE_URL"
                        + (f" or {credentials.base_url})" if credentials.base_url else ")"),
            "models": "\n".join(f"{name}: {', '.join(m.sizes)}; {'/'.join(map(str, m.seconds))} s{_model_notes(m)}"
                                for name, m in profile.models.items()),
            "default": f"{profile.default_model}, {profile.default_size}, {profile.default_seconds} s",
            "continuations": _continuing(profile), "features": _features(profile), "downloads": _downloads(profile)}
    if credentials.project:
        rows["key"] += f" (with {credentials.location}: the project's region)"
    if profile.shut_down:
        rows["shut down"] = profile.shut_down
    for name, value in rows.items():
        table.add_row(name, value)
    return table


def _model_notes(limits: ModelLimits) -> str:
    """What a model of a catalog-refreshed profile says of itself: its frames, switches and passthrough options."""
    notes = [*(["first frame only"] if limits.frames is not None and "last_frame" not in limits.frames else []),
             *(["continues its own videos"] if limits.continuation else []),
             *(["reference images"] if limits.references else []),
             *([f"passthrough: {', '.join(limits.passthrough)}"] if limits.passthrough else [])]
    return f" ({'; '.join(notes)})" if notes else ""


def _continuing(profile: ProviderProfile) -> str:
    if profile.extensions is None:
        return "from the last frame, stitched here"
    limits = profile.extensions
    held = [name for name, model in profile.models.items() if model.continuation is False]
    which = f" (not {', '.join(held)}: from the last frame)" if held else ""
    return (f"extended by the provider{which}: {'/'.join(map(str, limits.seconds))} s, at most {limits.max_count} "
            f"({limits.max_total_seconds} s in all)")


def _features(profile: ProviderProfile) -> str:
    counts = {"characters": profile.max_characters, "subjects": profile.subjects.max_count if profile.subjects else 0}
    listed = ", ".join(LABELS[name] + (f" (≤{counts[name]})" if name in counts else "")
                       for name in profile.capabilities.switched_on() if name != "extensions") or "-"
    mapped = any(m.endpoints for m in profile.models.values())
    return f"{listed} (where a model's input map takes it)" if mapped and listed != "-" else listed


def _downloads(profile: ProviderProfile) -> str:
    made = [v for v in ("thumbnail", "spritesheet") if v not in profile.variants]
    return ", ".join(profile.variants) + (f" ({' and '.join(made)} made here)" if made else "")
