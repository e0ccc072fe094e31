"""The one vocabulary of what a provider can do, shared by dialects (what their API can do at all), profiles (what
they switch on for their provider), plan validation (what a scene may ask for) and `reelflow providers`.

Each switch is declared once, with the words people read (`label`) and, where a plan asks for it by a name of its
own, that name (`plan`: a scene's `last_image` needs `last_frame`); everything else loops over `SWITCHES`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

Variant = Literal["video", "thumbnail", "spritesheet"]
ImageTransport = Literal["bytes", "url", "url-or-data", "url-or-upload"]


def _switch(label: str, plan: str | None = None) -> bool:
    return field(default=False, metadata={"label": label, "plan": plan})


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do. A dialect's say what its API can do at all; a profile's (`ProviderProfile.
    capabilities`) what it switches on for its provider, which may be less, never more."""

    extensions: bool = _switch("extensions")  # continues the provider's own video
    edits: bool = _switch("edits")
    remix: bool = _switch("remix")
    characters: bool = _switch("characters")
    batch: bool = _switch("batch")
    webhooks: bool = _switch("webhooks")
    list_jobs: bool = _switch("job list")  # finds a job whose create answer was lost
    last_frame: bool = _switch("last frame", plan="last_image")  # a clip can be told which frame to land on
    audio_switch: bool = _switch("sound switch", plan="audio")  # a request can switch the sound off
    seed: bool = _switch("seed", plan="seed")
    negative_prompt: bool = _switch("negative prompt", plan="negatives")
    subjects: bool = _switch("subjects")  # subject reference images
    poll_hint: bool = _switch("poll hint")  # says when a job is worth asking about again
    # What the dialect's API is like, not switched by a profile:
    input_maps: bool = False  # each model's inputs are written by its map in the profile (which it must have)
    variants: tuple[Variant, ...] = ("video",)
    images: ImageTransport = "bytes"  # how it takes reference images: sent along, fetched from a URL (a presigned
    # one, else a data URL, or one of the provider's own storage the dialect uploads them to first)
    own_endpoint: bool = False  # its SDK knows where the provider is (per region, say): no base URL needed

    def switched_on(self) -> list[str]:
        return [name for name in SWITCHES if getattr(self, name)]

    def beyond(self, possible: Capabilities) -> list[str]:
        """The switches on here that `possible` has off (a profile claiming what its dialect cannot do)."""
        return [name for name in self.switched_on() if not getattr(possible, name)]


SWITCHES: tuple[str, ...] = tuple(f.name for f in fields(Capabilities) if "label" in f.metadata)
LABELS: dict[str, str] = {f.name: f.metadata["label"] for f in fields(Capabilities) if "label" in f.metadata}
BY_PLAN_FIELD: dict[str, str] = {f.metadata["plan"]: f.name for f in fields(Capabilities)
                                 if f.metadata.get("plan") is not None}
