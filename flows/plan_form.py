"""A scene plan as a Prefect UI form: the plan model, with the active provider's sizes and models as
choices, as the parameter of a flow that renders it.

Prefect builds a deployment's form from the JSON schema of its flow's parameter annotations, so the choices
are fixed when this module is imported: from the provider profile the serving process (or worker) is
configured for. The form reads like a plan: what a model requires first (a scene's id and prompt), and an
optional field as its own type, left empty for its default. Pydantic gives a field of type `X | None` the
schema `anyOf: [X, {type: null}]`, which Prefect's form shows as a switch between X and "None" with the
note `Property is type "None"` under it; the form's models drop that option (an empty field is left out of
the parameters, and the model's default applies)."""

from __future__ import annotations

import functools
import json
import operator
import types
from copy import copy
from typing import Any, Literal, Union, cast, get_args, get_origin

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import SkipJsonSchema

from reelflow import Plan, ProviderProfile, Settings
from reelflow.plans import Route
from reelflow.providers import active_profile
from reelflow.results import PlanResult

from .render_plan import render_plan

NULL, BOOLEAN = {"type": "null"}, {"type": "boolean"}


def as_form(schema: dict[str, Any]) -> None:
    """A model's JSON schema as the form shows it: required fields first, and a field whose default is None
    as its own type (or types), without the null option and without the default. A true-or-false field keeps
    its None (the provider's own default): the form's switch has no third state and sends false unless set."""
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    for field in properties.values():
        given = field.get("anyOf", [])
        options = [option for option in given if option != NULL]
        if field.get("default", False) is None and len(options) < len(given) and options != [BOOLEAN]:
            del field["default"], field["anyOf"]
            field.update(options[0] if len(options) == 1 else {"anyOf": options})
    required = set(schema.get("required", []))
    schema["properties"] = dict(sorted(properties.items(), key=lambda item: item[0] not in required))


def as_form_left_empty(schema: dict[str, Any]) -> None:
    """The schema of a model that is an optional field's value (a plan's music, a scene's crop) as the form
    shows it: its defaults said in the descriptions, not filled in, so that the field stays out of the
    parameters unless something in it is filled in (the form fills in every default it is given)."""
    as_form(schema)
    for field in schema.get("properties", {}).values():
        if "default" in field:
            default = json.dumps(field.pop("default"))
            field["description"] = f"{field.get('description', '')} Default: {default}.".lstrip()


class _Form(BaseModel):
    model_config = ConfigDict(json_schema_extra=as_form)


class _FormLeftEmpty(BaseModel):
    model_config = ConfigDict(json_schema_extra=as_form_left_empty)


class _FormBuilder:
    """Form variants of a model and of every model its fields hold, with `choices` replacing the fields of
    those names wherever they appear."""

    def __init__(self, choices: dict[str, tuple[Any, Any]]) -> None:
        self.choices = choices
        self.built: dict[tuple[type[BaseModel], bool], type[BaseModel]] = {}

    def form_of(self, model: type[BaseModel], left_empty: bool = False, **fields: Any) -> type[BaseModel]:
        """`left_empty`: the model is the value of an optional field (see `as_form_left_empty`)."""
        if (model, left_empty) not in self.built:
            changed = {}
            for name, info in model.model_fields.items():
                annotation = self._swapped(info.annotation, left_empty=info.default is None)
                if annotation != info.annotation:
                    changed[name] = (annotation, copy(info))
            chosen = {name: choice for name, choice in self.choices.items()
                      if name in model.model_fields and model is not Route}  # (a route's model is its provider's)
            self.built[model, left_empty] = create_model(
                model.__name__, __base__=(model, _FormLeftEmpty if left_empty else _Form), __doc__=model.__doc__,
                **{**changed, **chosen, **fields})
        return self.built[model, left_empty]

    def _swapped(self, annotation: Any, left_empty: bool) -> Any:
        """`annotation` with every model in it (in a union or a list) replaced by its form."""
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.form_of(annotation, left_empty)
        origin, args = get_origin(annotation), get_args(annotation)
        if origin in (Union, types.UnionType):
            return functools.reduce(operator.or_, [self._swapped(arg, left_empty) for arg in args])
        if origin is list:
            return list[self._swapped(args[0], left_empty=False)]  # type: ignore[misc]
        return annotation


def plan_form(profile: ProviderProfile) -> type[Plan]:
    """`Plan` as a form: `size` and `model` (in the defaults and each scene) limited to what `profile` offers, an
    empty size meaning the profile's default size; without the plan's own `output` (the flow's is the form's)."""
    size: Any = Literal[tuple(profile.all_sizes)]
    model: Any = Literal[tuple(profile.models)]
    builder = _FormBuilder({
        "size": (size | None, Field(default=None, description=f"Output size on {profile.name}; empty: the plan's "
                                    f"defaults, else the provider's default ({profile.default_size}).")),
        "model": (model | None, Field(default=None, description=f"Video model on {profile.name}; empty: the plan's "
                                      f"defaults, else the provider's default ({profile.default_model}).")),
    })
    unshown: Any = SkipJsonSchema[str | None]  # type: ignore[misc]  # the plan's `output`, as the API may still give it
    form = builder.form_of(Plan, output=(unshown, Field(default=None)))
    return cast(type[Plan], form)


PlanForm = plan_form(active_profile(Settings()))


@flow(name="render-plan-form")
def render_plan_form(plan: PlanForm, output: str = "",  # type: ignore[valid-type]
                     retry_failed: bool = False) -> PlanResult:
    """Render a plan entered as a form (the Prefect UI's "Run" button): the same as `render-plan`.

    Args:
        plan: The scene plan: its name, scenes, defaults, style and characters.
        output: Where to write (an fsspec URL, e.g. s3://reels/renders); empty: ./out.
        retry_failed: Render again scenes that failed permanently in an earlier run.
    """
    return render_plan.fn(cast(Plan, plan), output=output or None, retry_failed=retry_failed)
