"""A scene plan as a Prefect UI form: the plan model, with the active provider's sizes and models as
choices, as the parameter of a flow that renders it.

Prefect builds a deployment's form from its flow's parameter annotations, so the choices are fixed when
this module is imported: from the provider profile the serving process (or worker) is configured for."""

from __future__ import annotations

from typing import Any, Literal, cast

from prefect import flow
from pydantic import Field, create_model

from reelflow import Plan, ProviderProfile, Scene, SceneDefaults, Settings
from reelflow.providers import active_profile
from reelflow.results import PlanResult

from .render_plan import render_plan


def plan_form(profile: ProviderProfile) -> type[Plan]:
    """`Plan`, with `size` and `model` (in the defaults and each scene) limited to what `profile` offers."""
    size: Any = Literal[tuple(profile.all_sizes)]
    model: Any = Literal[tuple(profile.models)]
    choices: dict[str, Any] = {
        "size": (size | None, Field(default=None, description=f"Output size on {profile.name}.")),
        "model": (model | None, Field(default=None, description=f"Video model on {profile.name}.")),
    }
    defaults = create_model("SceneDefaults", __base__=SceneDefaults, **choices)
    scene = create_model("Scene", __base__=Scene, **choices)
    return create_model(
        "Plan", __base__=Plan,
        defaults=(defaults, Field(default_factory=defaults, description="Values scenes inherit.")),
        scenes=(list[scene], Field(min_length=1, description="The shots, in order.")),  # type: ignore[valid-type]
    )


PlanForm = plan_form(active_profile(Settings()))


@flow(name="render-plan-form")
def render_plan_form(plan: PlanForm, output: str | None = None,  # type: ignore[valid-type]
                     retry_failed: bool = False) -> PlanResult:
    """Render a plan entered as a form (the Prefect UI's "Run" button): the same as `render-plan`.

    Args:
        plan: The scene plan: its name, defaults, style, characters and scenes.
        output: Where to write (an fsspec URL); empty: the plan's own `output`, else ./out.
        retry_failed: Render again scenes that failed permanently in an earlier run.
    """
    return render_plan.fn(cast(Plan, plan), output=output, retry_failed=retry_failed)
