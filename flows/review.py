"""Takes, and the review where a person picks them.

A scene with `takes: N` is rendered N times (see `takes_of`); what becomes of it is a `Choice`: a take kept,
a redo with a changed prompt, or the scene dropped. With a review, the plan run pauses with a form in the
Prefect UI (`reelflow review` answers it on a terminal) and goes on with the answers; a review that times out
keeps each scene's first take. A person's choices are kept in the ledger and stand while the takes they were
made on do, so a re-run asks only about what changed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import httpx
from prefect import get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import FlowPauseTimeout, PrefectHTTPStatusError
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL
from prefect.states import Running
from pydantic import Field, create_model

from reelflow import UserError
from reelflow.costs import extended
from reelflow.ledger import ChoiceRecord
from reelflow.plans import ResolvedScene, redo_of, scenes_and_takes
from reelflow.progress import report
from reelflow.report import thumbnail_of
from reelflow.results import Choice, SceneResult
from reelflow.storage import Storage

from ._board import artifact_key, update_artifact
from ._scene_run import SceneRun
from .render_scene import render_concurrently

REDO, DROP = "redo", "drop"
PROMPT_SUFFIX = " redo prompt"
CHECKS_SAID = "Checks: "  # where a scene's field in the form says what the checks found in each take


@dataclass(frozen=True)
class Review:
    """Whether a person is asked, about which plan, and for how long."""

    plan: str
    asked: bool
    timeout_seconds: int


@dataclass(frozen=True)
class Shot:
    """A scene of the plan and the results of its takes, in order."""

    scene: ResolvedScene
    takes: list[SceneResult]

    @property
    def id(self) -> str:
        return self.scene.id

    @property
    def finished(self) -> list[int]:
        return [number for number, take in enumerate(self.takes, start=1) if take.status == "completed"]

    @property
    def made_of(self) -> list[list[str]]:
        return [take.job_ids for take in self.takes]

    @property
    def options(self) -> list[str]:
        return [f"take {number}" for number in self.finished] + [REDO, DROP]

    def first_take(self) -> Choice:
        """What a review nobody answered keeps: the first finished take."""
        return Choice(kind="keep", take=self.finished[0], by="timeout")

    def best_take(self) -> Choice:
        """The finished take the checks rate best (pass over warn over fail, then fewer findings; the first of
        equals)."""
        return Choice(kind="keep", take=min(self.finished, key=lambda number: self.takes[number - 1].rank),
                      by="checks")

    def checks_of(self, number: int) -> str:
        """What the checks found in take `number`, in a few words."""
        return self.takes[number - 1].qa_said or "not checked"


def shots_of(scenes: list[ResolvedScene], results: list[SceneResult]) -> list[Shot]:
    """The plan's scenes, each with its takes' results (`results` in the order of `scenes`)."""
    takes: dict[str, list[SceneResult]] = {}
    firsts: dict[str, ResolvedScene] = {}
    for scene, result in zip(scenes, results, strict=True):
        takes.setdefault(scene.shot_id, []).append(result)
        firsts.setdefault(scene.shot_id, scene)
    return [Shot(firsts[shot], takes[shot]) for shot in firsts]


async def chosen_takes(shots: list[Shot], run: SceneRun, review: Review) -> list[SceneResult]:
    """One result per scene of the plan: its chosen take, its redo (rendered now) or its drop."""
    recorded = run.ledger.choices()
    choices = {shot.id: recorded[shot.id].choice.model_copy(update={"by": "earlier review"}) for shot in shots
               if shot.id in recorded and recorded[shot.id].made_of == shot.made_of}
    open_shots = [shot for shot in shots if shot.id not in choices and shot.finished]
    if review.asked and open_shots:
        answered = await _asked(open_shots, review, run)
        choices |= answered
        run.ledger.save_choices({**recorded, **{shot.id: ChoiceRecord(made_of=shot.made_of, choice=answered[shot.id])
                                                for shot in open_shots if answered[shot.id].by == "review"}})
    else:
        choices |= {shot.id: shot.best_take() for shot in open_shots if len(shot.takes) > 1}
    redone = await _redone([(shot, choice) for shot in shots if (choice := choices.get(shot.id)) and
                            choice.kind == REDO], run)
    results = [_picked(shot, choices.get(shot.id), redone.get(shot.id)) for shot in shots]
    for result in results:
        if result.choice is not None:
            outcome = "failed" if result.status == "failed" else "done"
            report(result.id, f"{outcome}: {result.choice.describe()}")
    return results


async def _redone(redos: list[tuple[Shot, Choice]], run: SceneRun) -> dict[str, SceneResult]:
    """The scenes sent back, rendered again with their new prompts (a redo kept from an earlier run is reused)."""
    if not redos:
        return {}
    scenes = [redo_of(run.made_where(shot.scene, shot.takes[0].route), choice.prompt or shot.scene.prompt)
              for shot, choice in redos]  # (each on the route that made its scene; moved on as any scene)
    run.estimate = extended(run.estimate, scenes, run.profiles, run.settings)  # each job within the budget
    run.expect(scenes)
    results = await render_concurrently(scenes, run, run.settings.max_concurrent)
    return {shot.id: result for (shot, _), result in zip(redos, results, strict=True)}


def _picked(shot: Shot, choice: Choice | None, redone: SceneResult | None) -> SceneResult:
    first = shot.takes[0]
    names = [take.id for take in shot.takes]
    if choice is None:
        return first if len(names) == 1 else first.model_copy(update={"id": shot.id, "takes": names})
    extra: dict[str, Any] = {"id": shot.id, "takes": names, "choice": choice}
    if choice.kind == DROP:
        return first.model_copy(update={**extra, "status": "dropped", "files": {}, "error": None})
    kept = redone if choice.kind == REDO and redone is not None else shot.takes[(choice.take or 1) - 1]
    return kept.model_copy(update={**extra, "take": None if kept.id == shot.id else kept.id})


async def _asked(shots: list[Shot], review: Review, run: SceneRun) -> dict[str, Choice]:
    """The run paused with the review form, announced on its page (then what became of it); each scene's
    answer, or its first take when nobody answers in time."""
    announcement = Announcement.of(review, shots)
    takes = _takes(shots, run.storage)
    page = await acreate_markdown_artifact(announcement.page(takes), key=artifact_key(review.plan, "review"),
                                           description=f"Review of {review.plan}: waiting for an answer")
    form = review_form(review.plan, shots, announcement.form_description(page),
                       min(profile.prompt_max_chars for profile in run.profiles))
    for shot in shots:
        report(shot.id, "waiting for review")
    get_run_logger().info("waiting for a review (Resume on this run's page, or `reelflow review`): %s",
                          announcement.said)
    choices, outcome = await _answered(form, shots, announcement)
    await asyncio.to_thread(update_artifact, page, announcement.page(takes, outcome), f"Review of {review.plan}")
    return choices


async def _answered(form: type[RunInput], shots: list[Shot], announcement: Announcement
                    ) -> tuple[dict[str, Choice], str]:
    """Each scene's answer, or its first take when nobody answers in time; and how the review ended, in words."""
    logger = get_run_logger()
    try:
        # Waited for in a thread, with Prefect's sync client: the run's loop has nothing else to do meanwhile.
        answer = await asyncio.to_thread(pause_flow_run, wait_for_input=form, timeout=announcement.timeout_seconds,
                                         poll_interval=2, key="review")
    except FlowPauseTimeout:
        logger.warning("nobody reviewed the takes by %s: each scene keeps its first take", announcement.deadline)
        await _running_again()
        return ({shot.id: shot.first_take() for shot in shots},
                f"**Nobody answered** by {announcement.deadline}: each scene kept its first take.")
    choices = choices_from(answer.model_dump(by_alias=True), shots)
    for shot in shots:
        logger.info("scene %r: %s", shot.id, choices[shot.id].describe())
    return choices, "**Answered**: " + "; ".join(f"{shot.id}: {choices[shot.id].describe()}" for shot in shots) + "."


async def _running_again() -> None:
    """A pause that timed out leaves the run Paused on the server; the run goes on, so it says so."""
    async with get_client() as client:
        await client.set_flow_run_state(flow_run.id, Running(), force=True)


def choices_from(answer: dict[str, Any], shots: list[Shot]) -> dict[str, Choice]:
    choices = {}
    for shot in shots:
        picked = str(answer[shot.id])
        if picked == REDO:
            choices[shot.id] = Choice(kind="redo", prompt=str(answer[shot.id + PROMPT_SUFFIX]), by="review")
        elif picked == DROP:
            choices[shot.id] = Choice(kind="drop", by="review")
        else:
            choices[shot.id] = Choice(kind="keep", take=int(picked.removeprefix("take ")), by="review")
    return choices


def review_form(plan: str, shots: list[Shot], description: str, prompt_max_chars: int) -> type[RunInput]:
    """The form the paused run shows: per scene, which take to keep (or redo, or drop), and a redo's prompt."""
    fields: dict[str, Any] = {}
    for number, shot in enumerate(shots):
        options: Any = Literal[tuple(shot.options)]
        checked = " ".join(f"Take {n}: {shot.checks_of(n)}." for n in shot.finished)
        fields[f"scene_{number}"] = (options, Field(
            default=shot.options[0], alias=shot.id, title=shot.id,
            description=f"Scene {shot.id!r}: the take to keep, a redo with the prompt below, or drop the scene. "
                        f"{CHECKS_SAID}{checked}"))
        fields[f"prompt_{number}"] = (str, Field(
            default=shot.scene.segments[0].prompt, alias=shot.id + PROMPT_SUFFIX, max_length=prompt_max_chars,
            min_length=1, title=f"{shot.id}: prompt of a redo", description="Used only when the scene is redone."))
    form = create_model(form_title(plan), __base__=RunInput, **fields)
    return form.with_initial_data(description=description)


@dataclass(frozen=True)
class Announcement:
    """What a paused review asks of a person, by when, and what happens if nobody answers: said at the top of
    the run's page (an artifact, and the description of its Resume form) and in its log."""

    plan: str
    count: str  # `2 scenes (4 takes)`
    deadline: str  # `2026-12-07 16:05 CET`
    timeout_seconds: int

    @classmethod
    def of(cls, review: Review, shots: list[Shot]) -> Announcement:
        deadline = datetime.now().astimezone() + timedelta(seconds=review.timeout_seconds)
        return cls(review.plan, scenes_and_takes(len(shots), sum(len(shot.finished) for shot in shots)),
                   deadline.strftime("%Y-%m-%d %H:%M %Z"), review.timeout_seconds)

    @property
    def decide(self) -> str:
        return f"for each of {self.count}, keep a take, redo it with a changed prompt, or drop it"

    @property
    def unanswered(self) -> str:
        return "if nobody answers by then, each scene keeps its first take and the run goes on"

    @property
    def said(self) -> str:
        return f"{self.decide}, by {self.deadline}; {self.unanswered}"

    def page(self, takes: list[str], outcome: str | None = None) -> str:
        """The review's artifact: what to decide, by when and what happens unanswered (or, once over, what
        became of it), then each scene's prompt and the thumbnails of its takes."""
        lines = [f"# Review of {self.plan}", ""]
        lines += [outcome] if outcome else [
            f"**The run waits for a review**: {self.decide}.", "",
            f"**Answer by {self.deadline}**: *Resume* at the top of this run's page, or `reelflow review` with the "
            "plan on a terminal.", "", f"**{self.unanswered.capitalize()}**."]
        return "\n".join([*lines, "", *takes])

    def form_description(self, page: UUID) -> str:
        """The Resume form's description, linking to the review's artifact."""
        ui = PREFECT_UI_URL.value()
        link = f"[the takes' thumbnails]({ui}/artifacts/artifact/{page})" if ui else "the artifact `review`"
        return (f"**Review of {self.plan}**: {self.decide} (see {link}). **Answer by {self.deadline}**; "
                f"{self.unanswered}.")


def _takes(shots: list[Shot], storage: Storage) -> list[str]:
    """Each scene's prompt and the thumbnails of its finished takes, as Markdown lines."""
    lines = []
    for shot in shots:
        lines += [f"## {shot.id}", "", shot.scene.prompt, ""]
        lines += [f"**take {n}** ({shot.checks_of(n)}): ![take {n}]({url})" for n in shot.finished
                  if (url := thumbnail_of(shot.takes[n - 1], storage))]
        lines.append("")
    return lines


@dataclass(frozen=True)
class Question:
    """One scene of a paused review: its choices (the first is the default), the prompt a redo starts from, and what
    the checks found in each take."""

    scene: str
    options: list[str]
    prompt: str
    checks: str = ""


@dataclass(frozen=True)
class PausedReview:
    """A plan run waiting for its review, and the form it shows (read from the API, as the UI reads it)."""

    flow_run_id: UUID
    schema: dict[str, Any]

    @property
    def questions(self) -> list[Question]:
        fields = self.schema["properties"]
        return [Question(name, list(field["enum"]), str(fields[name + PROMPT_SUFFIX]["default"]),
                         str(field.get("description", "")).partition(CHECKS_SAID)[2])
                for name, field in fields.items() if "enum" in field]

    def answer(self, choices: dict[str, str], prompts: dict[str, str] | None = None) -> None:
        """Resume the run with a choice per scene (`take N`, `redo`, `drop`; unnamed: the default) and the
        prompts of the redos."""
        answers: dict[str, str] = {}
        for question in self.questions:
            answers[question.scene] = choices.get(question.scene, question.options[0])
            answers[question.scene + PROMPT_SUFFIX] = (prompts or {}).get(question.scene, question.prompt)
        with get_client(sync_client=True) as client:
            result = client.resume_flow_run(self.flow_run_id, run_input=answers)
        if result.status != SetStateStatus.ACCEPT:
            raise UserError(f"the review was not taken: {result.details}")


def paused_review(plan: str) -> PausedReview | None:
    """The newest run of `plan` paused for its review, if any."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))),
            sort=FlowRunSort.START_TIME_DESC, limit=50)
        for run in runs:
            keyset = run.state.state_details.run_input_keyset if run.state else None
            if not keyset:
                continue
            try:
                schema = json.loads(client.read_flow_run_input(run.id, keyset["schema"]))
            except PrefectHTTPStatusError as e:
                if e.response.status_code != httpx.codes.NOT_FOUND:
                    raise
                continue  # paused this moment: its form is saved just after
            if schema.get("title") == form_title(plan):
                return PausedReview(run.id, schema)
    return None


def form_title(plan: str) -> str:
    return f"Review of {plan}"
