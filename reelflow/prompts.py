"""Prompt craft: a scene's prompt as free text or as structured fields, a plan-wide style every scene
inherits, and one deterministic composition of them into the text the provider receives.

The composed prompt is one `Label: value` line per field that has a value, in the order of `FIELDS`.
A free-text prompt comes first, as written; the plan's style follows as labelled lines, leaving out any
label the text already has, so composing a composed prompt changes nothing (no double wrapping)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

# (field, label), in the order the composed prompt lists them.
FIELDS: tuple[tuple[str, str], ...] = (
    ("use_case", "Use case"), ("scene", "Scene/background"), ("subject", "Subject"), ("action", "Action"),
    ("camera", "Camera"), ("style", "Style/format"), ("lighting", "Lighting/mood"), ("palette", "Color palette"),
    ("audio", "Audio"), ("dialogue", "Dialogue"), ("on_screen_text", "On-screen text"), ("timing", "Timing/beats"),
    ("constraints", "Constraints"), ("negatives", "Avoid"),
)
BEAT = ("action", "camera", "timing")  # what an extension changes; everything else carries over
LOOK = ("subject", "style")  # what an extension should not change (continuations drift when it does)


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def given(self) -> dict[str, str]:
        return {name: value for name, value in self.model_dump().items() if value}


class StyleBlock(_Fields):
    """Plan-wide look that every scene inherits, field by field, unless it sets its own."""

    style: str | None = Field(default=None, description="Visual style or format, e.g. 35 mm film, anime.")
    palette: str | None = Field(default=None, description="Colour palette.")
    lighting: str | None = Field(default=None, description="Lighting and mood.")
    constraints: str | None = Field(default=None, description="What must hold in every shot.")
    negatives: str | None = Field(default=None, description="What to avoid (flicker, text artefacts, ...).")


class PromptFields(StyleBlock):
    """A prompt as structured fields; each one is optional."""

    use_case: str | None = Field(default=None, description="What the video is for.")
    scene: str | None = Field(default=None, description="Setting and background.")
    subject: str | None = Field(default=None, description="Who or what the shot is about.")
    action: str | None = Field(default=None, description="What happens, in beats.")
    camera: str | None = Field(default=None, description="Shot, lens and movement.")
    audio: str | None = Field(default=None, description="Sound and music.")
    dialogue: str | None = Field(default=None, description="Spoken lines.")
    on_screen_text: str | None = Field(default=None, description="Text that appears in the frame.")
    timing: str | None = Field(default=None, description="When the beats happen.")


Prompt = str | PromptFields


def compose(prompt: Prompt, style: StyleBlock | None = None, *, negatives: bool = True) -> str:
    """The text sent to the provider for `prompt` under the plan-wide `style`; without `negatives` for a provider
    that takes what to avoid as a field of its own (see `negatives_of`)."""
    inherited = style.given() if style else {}
    if isinstance(prompt, PromptFields):
        return _lines({name: value for name, value in {**inherited, **prompt.given()}.items()
                       if negatives or name != "negatives"})
    text = prompt.strip()
    stated = {label.lower() for label in _LABEL_LINE.findall(text)}
    extra = {name: value for name, value in inherited.items() if _LABELS[name].lower() not in stated
             and (negatives or name != "negatives")}
    return "\n".join(part for part in (text, _lines(extra)) if part)


def negatives_of(prompt: Prompt, style: StyleBlock | None = None) -> str | None:
    """What to avoid, as the prompt's fields (or else the plan's style) say it."""
    own = prompt.negatives if isinstance(prompt, PromptFields) else None
    return own or (style.negatives if style else None)


def continuation(scene: Prompt, extension: Prompt) -> PromptFields | str:
    """An extension's own prompt over what it inherits from its scene: everything but the beat.

    A free-text extension of a structured scene is its new action; of a free-text scene, itself."""
    if not isinstance(scene, PromptFields):
        return extension
    kept = {name: value for name, value in scene.given().items() if name not in BEAT}
    own = extension.given() if isinstance(extension, PromptFields) else {"action": extension}
    return PromptFields(**{**kept, **own})


def drift(scene: Prompt, extension: Prompt) -> list[str]:
    """The look fields an extension changes (a warning: a continuation should change only the beat)."""
    if not isinstance(scene, PromptFields) or not isinstance(extension, PromptFields):
        return []
    before, after = scene.given(), extension.given()
    return [name for name in LOOK if name in after and after[name] != before.get(name)]


_LABELS = dict(FIELDS)
_LABEL_LINE = re.compile(r"^(" + "|".join(re.escape(label) for _, label in FIELDS) + r"):", re.MULTILINE | re.I)


def _lines(values: dict[str, str]) -> str:
    return "\n".join(f"{label}: {' '.join(values[name].split())}" for name, label in FIELDS if name in values)
