"""Declared input maps, for providers whose every model has an input schema of its own (fal's queue): which of
a clip's quantities goes to which input field, in what encoding, on which of the model's endpoints; and the
provider's published input schemas, against which a map is checked when the profile is read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Quantity = Literal["prompt", "seconds", "aspect_ratio", "resolution", "image", "last_image", "audio", "negatives",
                   "seed"]
ALWAYS_SENT: frozenset[Quantity] = frozenset({"prompt", "seconds", "aspect_ratio", "resolution"})  # of every clip
JsonType = Literal["string", "integer", "number", "boolean", "array", "object"]
_QUANTITY_TYPES: dict[Quantity, JsonType] = {"prompt": "string", "seconds": "integer", "aspect_ratio": "string",
                                             "resolution": "string", "image": "string", "last_image": "string",
                                             "audio": "boolean", "negatives": "string", "seed": "integer"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """Where one quantity goes: the input field, and how its value is written there."""

    field: str = Field(description="The input field's name.")
    text: str | None = Field(default=None, description="Sent as this text, `{}` standing for the value (`\"{}\"` "
                             "sends 5 as \"5\", `\"{}s\"` as \"5s\"); unset: sent as it is (a number stays one).")
    values: dict[str, Any] = Field(default_factory=dict, description="Values renamed on the way (`{4K: 4k}`).")

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        return {"field": data} if isinstance(data, str) else data

    def encode(self, value: Any) -> Any:
        value = self.values.get(str(value), value)
        return self.text.format(value) if self.text is not None else value

    def type_sent(self, quantity: Quantity) -> JsonType:
        if self.text is not None:
            return "string"
        renamed = {type(v) for v in self.values.values()}
        return "string" if renamed == {str} else _QUANTITY_TYPES[quantity]


class Endpoint(_Strict):
    """One of a model's endpoints (text-to-video, image-to-video, first-last-frame): what it takes, and where its
    answer has the video."""

    id: str = Field(description="The endpoint's id, as the provider lists it (`fal-ai/veo3.1/image-to-video`).")
    inputs: dict[Quantity, InputSpec] = Field(description="Which quantity goes to which input field.")
    requires: list[Quantity] = Field(default_factory=list, description="Quantities a job must have to be sent "
                                     "here (`[image]` for image-to-video).")
    fixed: dict[str, Any] = Field(default_factory=dict, description="Inputs sent as they are with every job.")
    video: str = Field(default="video.url", description="Where the answer has the video's URL (dotted path).")

    def takes(self, carried: Iterable[Quantity]) -> bool:
        """Whether a job carrying these quantities is sent here: every one has a field, every required one is
        carried."""
        carried = set(carried)
        return carried - ALWAYS_SENT <= set(self.inputs) and set(self.requires) <= carried

    def encoded(self, quantities: Mapping[Quantity, Any]) -> dict[str, Any]:
        """The inputs of a job (quantities it does not have, or that have no field here, left out)."""
        fields = dict(self.fixed)
        fields.update({spec.field: spec.encode(quantities[q]) for q, spec in self.inputs.items()
                       if quantities.get(q) is not None})
        return fields


class InputField(_Strict):
    """One field of an input schema: its JSON type, and the values it takes when it lists them."""

    type: JsonType
    enum: list[Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _typed(cls, data: Any) -> Any:
        return {"type": data} if isinstance(data, str) else data


class InputSchema(_Strict):
    """An endpoint's inputs as the provider publishes them."""

    fields: dict[str, InputField]
    required: list[str] = Field(default_factory=list)


def endpoint_problems(endpoint: Endpoint, schema: InputSchema | None, offered: Mapping[Quantity, list[Any]]
                      ) -> list[str]:
    """What is wrong with a map, checked against the endpoint's schema when the profile has it: fields the
    schema does not have, of another type, values (of the model's `offered` lengths, ratios, tiers) it refuses,
    and required fields nothing fills."""
    problems = [f"requires: {q} is not mapped" for q in endpoint.requires if q not in endpoint.inputs]
    if schema is None:
        return problems
    for quantity, spec in endpoint.inputs.items():
        declared = schema.fields.get(spec.field)
        where = f"inputs.{quantity}"
        if declared is None:
            problems.append(f"{where}: {endpoint.id} has no input {spec.field!r} (it has {', '.join(schema.fields)})")
            continue
        sent = spec.type_sent(quantity)
        if sent != declared.type and not (sent == "integer" and declared.type == "number"):
            problems.append(f"{where}: {spec.field} is {declared.type} on {endpoint.id}, sent as {sent}")
        elif declared.enum is not None:
            refused = [v for v in offered.get(quantity, []) if spec.encode(v) not in declared.enum]
            if refused:
                problems.append(f"{where}: {spec.field} on {endpoint.id} takes {declared.enum}, not "
                                f"{[spec.encode(v) for v in refused]}")
    problems += [f"fixed.{name}: {endpoint.id} has no input {name!r}" for name in endpoint.fixed
                 if name not in schema.fields]
    filled = {endpoint.inputs[q].field for q in (ALWAYS_SENT | set(endpoint.requires)) & set(endpoint.inputs)}
    problems += [f"{endpoint.id} requires {name!r}: map a quantity that every job here has to it, or list the "
                 "quantity under requires" for name in schema.required if name not in filled | set(endpoint.fixed)]
    return problems
