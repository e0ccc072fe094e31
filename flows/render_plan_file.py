"""A plan kept in storage, rendered by name: what a scheduled deployment runs."""

from __future__ import annotations

from prefect import flow

from reelflow import load_plan
from reelflow.results import PlanResult

from .render_plan import render_plan


@flow(name="render-plan-file")
def render_plan_file(plan_url: str, output: str | None = None, retry_failed: bool = False) -> PlanResult:
    """Read the plan at `plan_url` and render it, resuming whatever an earlier run left (the same as
    `reelflow run`).

    Args:
        plan_url: The plan file: a path or any fsspec URL (s3://, gs://, ...).
        output: Where to write (an fsspec URL); empty: the plan's own `output`, else ./out.
        retry_failed: Render again scenes that failed permanently in an earlier run.
    """
    return render_plan.fn(load_plan(plan_url), output=output, retry_failed=retry_failed)
