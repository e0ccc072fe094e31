"""The `reelflow` command line."""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import re
import signal
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from pydantic import ValidationError

from .costs import Estimate, SceneCost
from .errors import ReelflowError, UserError
from .media.images import Fit, OutputFormat
from .plans import Plan, ResolvedScene, load_plan, plan_warnings
from .prefect_server import prefect_api
from .quiet import keep_library_logs_off_the_terminal, keep_run_logs_off_the_console, quiet_prefect
from .results import PlanResult
from .settings import Settings
from .storage import DEFAULT_OUTPUT, Storage

if TYPE_CHECKING:
    from rich.table import Table

    from .jobs import JobRow
    from .routes import RoutedPlan

SIZE = re.compile(r"[1-9][0-9]*x[1-9][0-9]*")

# Markdown: a docstring's lines are one paragraph, wrapped to the terminal, not broken where the source breaks them.
app = typer.Typer(help="Turn scene plans into finished videos.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, rich_markup_mode="markdown")
# Registered first, so run last: the interpreter's last collection at exit skips what the command's imports made
# (about 0.4 s of a command that ran a flow).
atexit.register(gc.freeze)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"reelflow {version('reelflow')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", help="Print reelflow's version and exit.",
                                          callback=_print_version, is_eager=True)] = False,
) -> None:
    """reelflow: scene plans to finished videos, through the video API of the provider you choose."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear line on stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


PlanArgument = Annotated[str, typer.Argument(help="Scene plan file (YAML or JSON; a path or fsspec URL).")]


@app.command()
def validate(plan: PlanArgument) -> None:
    """Check a plan against the active provider (each of its routes), and the settings a run of it needs
    (credentials, output), without making any call."""
    from .routes import check_route_images

    settings = Settings()
    try:
        loaded = load_plan(plan)
        routed = _routed(loaded, settings, plan)
        scenes = routed.scenes
        check_route_images(routed, _plan_folder(loaded, settings, None))
        _check_images(scenes, plan)
    except UserError as e:
        raise _user_error(e) from None
    except ReelflowError as e:  # the output is no storage reelflow can use, or an image cannot be reached
        raise fail(str(e)) from None
    _warn(plan_warnings(loaded, source=plan))
    _print_notes((s.id, s.notes) for s in scenes)
    _print_skipped(routed)
    seconds = sum(s.total_seconds for s in scenes)
    where = ", ".join(profile.name for profile in routed.profiles)
    typer.echo(f"{plan}: {len(scenes)} scenes, {seconds} s of video on {where}: valid")


def _routed(plan: Plan, settings: Settings, source: str) -> RoutedPlan:
    """The plan checked on the provider a run of it uses (each of its routes), every setting a run needs checked
    (see `checked_plan`)."""
    from .routes import checked_plan

    return checked_plan(plan, settings, source)


def _print_skipped(routed: RoutedPlan) -> None:
    """The routes a scene cannot take, and why (a plan with routes)."""
    for scene, reasons in routed.skipped.items():
        for reason in reasons:
            typer.echo(f"note: scene {scene!r} skips route {reason}")


def _check_images(scenes: list[ResolvedScene], source: str) -> None:
    """Every image of the plan read whole, as a run reads it before any paid request: each missing, unreadable,
    damaged or cut-short image is one problem."""
    from .errors import ImageError, PlanError
    from .media.references import SceneImages

    problems = []
    for scene in scenes:
        try:
            SceneImages.read(scene)
        except ImageError as e:
            problems.append(f"{source}: {e}")
    if problems:
        raise PlanError(problems)


_ESTIMATED_OUTPUT = ("The output a run would write to (fsspec URL): what earlier runs made there is not paid "
                     "again. Default: the plan's output.")


@app.command()
def estimate(
    plan: PlanArgument,
    output: Annotated[str | None, typer.Option(help=_ESTIMATED_OUTPUT)] = None,
) -> None:
    """Print what each scene and the whole plan would cost on the active provider, and exit."""
    _estimated(plan, Settings(), output, every_scene=True)


@app.command()
def run(
    plan: PlanArgument,
    output: Annotated[str | None, typer.Option(help="Where to write (fsspec URL); default: the plan's output.")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Render again scenes that failed permanently before.")] = False,
    wait: Annotated[bool, typer.Option(help="If another run is rendering to the same output, wait for it to end "
                                       "(else stop at once, naming it).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print every request the run would send, and send none.")] = False,
    review: Annotated[bool, typer.Option(help="Once the scenes are rendered, pause for a person to choose what "
                                         "becomes of each (in the Prefect UI, or with `reelflow review PLAN`).")
                      ] = False,
) -> None:
    """Render every scene of a plan; exit code 0 only when every scene succeeded.

    Prints the cost estimate first; refuses (exit code 3) a plan that would cost more than its budget.
    Running it again on the same output resumes: nothing already paid for is paid for twice."""
    import httpx

    from .progress import showing_progress
    from .providers import SANDBOX, announcement, check_settings, going_live, route_choices

    settings = Settings()
    loaded, routed, costs = _estimated(plan, settings, output, every_scene=dry_run)
    if dry_run:
        _print_dry_run(plan, (loaded, routed, costs), settings, output)
        return
    choices = route_choices(loaded, routed.profiles, settings)
    sandboxed = []
    for choice in choices:
        access = check_settings(settings, choice.profile)
        typer.echo(announcement(choice, access, settings), err=True)
        if access is None and choice.profile.name != SANDBOX:
            sandboxed.append(choice.profile)
    quiet_prefect()
    from flows.render_plan import RenderFailed, render_plan

    keep_run_logs_off_the_console()
    if review or loaded.review:
        typer.echo(f"the run pauses for a review once its scenes are rendered: answer it in the Prefect UI, or "
                   f"with `reelflow review {plan}` in another terminal", err=True)
    try:
        with stopped_by_signals(), prefect_api(settings, announce), showing_progress([s.id for s in costs.scenes]):
            result = render_plan(loaded, output=output, retry_failed=retry_failed, wait=wait, review=review)
    except RenderFailed as e:
        _print_result(e.result)
        raise typer.Exit(1) from None
    except ReelflowError as e:
        raise fail(str(e), 1) from None
    except httpx.HTTPError as e:  # Prefect's own client (a provider's errors are ReelflowErrors by now)
        result = _without_prefect(loaded.name, e)
    _print_result(result)
    if sandboxed:
        command = " ".join(["reelflow run", plan, *(["--output", output] if output else [])])
        for line in going_live(sandboxed, command):
            typer.echo(line)


@app.command("review")
def review_command(plan: PlanArgument) -> None:
    """Answer the review a run of the plan is paused for: per scene, keep a take, redo it with a changed
    prompt, or drop it. The run then goes on."""
    from rich.prompt import Prompt

    try:
        name = load_plan(plan).name
    except UserError as e:
        raise _user_error(e) from None
    quiet_prefect()
    from flows.review import paused_review

    with prefect_api(Settings(), announce):
        waiting = paused_review(name)
        if waiting is None:
            raise fail(f"no run of plan {name!r} is paused for a review", 1)
        choices, prompts = {}, {}
        for question in waiting.questions:
            typer.echo(printable(f"scene {question.scene!r}: {question.prompt}"))
            if question.checks:
                typer.echo(printable(f"  checks: {question.checks}"))
            choices[question.scene] = Prompt.ask("  keep, redo or drop", choices=question.options,
                                                 default=question.options[0])
            if choices[question.scene] == "redo":
                prompts[question.scene] = Prompt.ask("  its new prompt", default=question.prompt)
        try:
            waiting.answer(choices, prompts)
        except ReelflowError as e:
            raise fail(str(e), 1) from None
    typer.echo(f"answered: the run of {name!r} goes on")


Priced = tuple[Plan, "RoutedPlan", Estimate]  # a plan as loaded, checked on its routes, and priced


def _estimated(plan: str, settings: Settings, output: str | None, every_scene: bool) -> Priced:
    """Load, validate and price the plan (less what earlier runs on `output` made), print the estimate (scene by
    scene, or for a long plan unless `every_scene`, by kind of scene; with routes, the worst case), and refuse it
    if it is over budget."""
    from .costs import BudgetExceeded, estimate
    from .reuse import planned_reuse

    try:
        loaded = load_plan(plan)
        routed = _routed(loaded, settings, plan)
        scenes = routed.scenes
        reuse = planned_reuse(loaded, scenes, _plan_folder(loaded, settings, output), settings)
        costs = estimate(loaded, scenes, routed.profiles, settings, reuse)
        if loaded.providers:
            costs.worst_usd = routed.worst_usd(settings)
    except UserError as e:
        raise _user_error(e) from None
    except ReelflowError as e:  # the output cannot be read
        raise fail(str(e), 1) from None
    _warn(plan_warnings(loaded, source=plan))
    _print_skipped(routed)
    _print_estimate(costs, every_scene)
    try:
        costs.check(source=plan)
    except BudgetExceeded as e:
        raise fail(str(e), 3) from None
    return loaded, routed, costs


def _print_dry_run(source: str, priced: Priced, settings: Settings, output: str | None) -> None:
    from ._dry_run import describe

    plan, routed, costs = priced
    try:
        for profile in routed.profiles:  # (with routes: each provider's scenes, as planned, in its own dialect)
            scenes = [scene for scene in routed.scenes if scene.provider == profile.name]
            typer.echo(printable(describe(plan, scenes, profile, settings, costs,
                                          _plan_folder(plan, settings, output))))
    except UserError as e:
        raise _user_error(e) from None
    except ReelflowError as e:
        raise fail(str(e)) from None


def _plan_folder(plan: Plan, settings: Settings, output: str | None) -> Storage:
    return Storage(output or plan.output or DEFAULT_OUTPUT, settings.storage_options).child(plan.name)


def printable(text: str) -> str:
    """`text` safe to show on a terminal: control and format characters from a plan (an escape sequence, a
    bidi override) are shown as escapes instead of acting on the terminal; lines and tabs stay."""
    return "".join(c.encode("unicode_escape").decode() if unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\t"
                   else c for c in text)


LISTED_SCENES = 40  # a run of a longer plan prints its estimate by kind of scene, and its outcome's exceptions


def _print_estimate(costs: Estimate, every_scene: bool) -> None:
    from rich.console import Console

    reused = sum(s.reused for s in costs.scenes)
    table = (_scene_costs(costs, reused) if every_scene or len(costs.scenes) <= LISTED_SCENES
             else _costs_by_kind(costs, reused))
    budget = f" (budget ${costs.budget_usd:.2f})" if costs.budget_usd is not None else ""
    earlier = f"; {reused} more made by earlier runs on this output, not paid again" if reused else ""
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(f"Estimated total: ${costs.total_usd:.2f} for {sum(s.seconds for s in costs.scenes)} s "
                  f"of video in {sum(s.jobs for s in costs.scenes)} jobs{budget}{earlier}", markup=False)
    if costs.worst_usd is not None:
        console.print(f"At most ${costs.worst_usd:.2f} if every scene is paid on every route it may take (each "
                      "route's attempt paid, the last delivered)", markup=False)
    if (retakes := costs.retakes_note()) is not None:
        console.print(f"Retakes (qa: retake): {retakes}", markup=False)
    _print_notes((s.id, s.notes) for s in costs.scenes)


def _scene_costs(costs: Estimate, reused: int) -> Table:
    routes = costs.worst_usd is not None  # (each scene's planned route)
    table = _table(f"Estimate on {costs.provider} (USD per second of output)",
                   ("scene", *(("provider",) if routes else ()), "model", "size", "seconds", "jobs",
                    *(("reused",) if reused else ()), "cost"))
    for scene in costs.scenes:
        table.add_row(scene.id, *((scene.provider,) if routes else ()), scene.model, scene.size, str(scene.seconds),
                      str(scene.jobs), *((str(scene.reused),) if reused else ()), f"${scene.usd:.2f}")
    return table


def _costs_by_kind(costs: Estimate, reused: int) -> Table:
    """One row for the scenes alike in model, size and length: a long plan's estimate on one screen."""
    kinds: dict[tuple[str, str, int], list[SceneCost]] = {}
    for scene in costs.scenes:
        kinds.setdefault((scene.model, scene.size, scene.seconds), []).append(scene)
    table = _table(f"Estimate on {costs.provider} by kind of scene ({len(costs.scenes)} scenes; `reelflow estimate` "
                   "lists each)", ("scenes", "model", "size", "seconds each", "jobs",
                                   *(("reused",) if reused else ()), "cost"))
    for (model, size, seconds), alike in kinds.items():
        table.add_row(f"{len(alike)} ({alike[0].id} ... {alike[-1].id})" if len(alike) > 1 else alike[0].id,
                      model, size, str(seconds), str(sum(s.jobs for s in alike)),
                      *((str(sum(s.reused for s in alike)),) if reused else ()), f"${sum(s.usd for s in alike):.2f}")
    return table


def _table(title: str, columns: Iterable[str]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        left = column in ("scene", "scenes", "provider", "model", "size")
        table.add_column(column, justify="left" if left else "right")
    return table


def _print_notes(scenes: Iterable[tuple[str, list[str]]]) -> None:
    """How the provider's limits shaped each scene (lengths cut into jobs, continuations from last frames)."""
    for scene, notes in scenes:
        for note in notes:
            typer.echo(f"note: scene {scene!r}: {note}")


@app.command()
def prepare(
    sources: Annotated[list[str], typer.Argument(help="Image files, folders, globs or URLs.")],
    size: Annotated[str, typer.Option(help="Target size WIDTHxHEIGHT.")],
    out: Annotated[str, typer.Option(help="Output folder (fsspec URL).")],
    mode: Annotated[Fit, typer.Option(help="cover (crop to fill), pad (letterbox) or stretch.")] = "cover",
    pad_color: Annotated[str, typer.Option(help="Background for pad.")] = "#000000",
    image_format: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = "JPEG",
) -> None:
    """Make every image exactly SIZE, e.g. for use as reference images (on every core, here: no Prefect run;
    the prepare-images flow and deployment do the same with one)."""
    if not SIZE.fullmatch(size):
        raise fail(f"--size: {size!r} is not WIDTHxHEIGHT")
    from .image_batch import Batch, prepare_all

    try:
        results = prepare_all(Batch(sources=sources, size=size, output=out, fit=mode, pad_color=pad_color,
                                   output_format=image_format).jobs(Settings()))
    except KeyboardInterrupt:
        raise fail("stopped (Ctrl-C); the images already written are kept", 128 + signal.SIGINT) from None
    except ReelflowError as e:
        raise fail(str(e), 1) from None
    for item in results:
        for note in item.warnings:
            typer.echo(f"warning: {note}", err=True)
        if item.error:
            typer.echo(f"error: {item.error}", err=True)
    done = sum(1 for r in results if r.error is None)
    typer.echo(f"{done} of {len(results)} images prepared at {size} in {out}")
    if done < len(results) or not results:
        raise typer.Exit(1)


@app.command()
def check(
    videos: Annotated[list[str], typer.Argument(help="Video files (paths or fsspec URLs).")],
    seconds: Annotated[float | None, typer.Option(help="The length ordered: a shorter video fails.")] = None,
    size: Annotated[str | None, typer.Option(help="The size ordered, WIDTHxHEIGHT.")] = None,
    fps: Annotated[float | None, typer.Option(help="The frame rate ordered.")] = None,
    reference: Annotated[str | None, typer.Option(help="The image the video should start from (path or URL).")]
    = None,
    last_image: Annotated[str | None, typer.Option(help="The image the video should end on (path or URL).")] = None,
    sound: Annotated[bool | None, typer.Option("--sound/--no-sound", help="Whether sound was asked for: with "
                                               "--sound, a missing or silent sound track fails (default: not "
                                               "known, silence not checked).")] = None,
    join: Annotated[list[float] | None, typer.Option(help="Seconds where clips were joined into the video: the jump "
                                                     "there is checked (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a list of {file, verdict, findings}.")] = False,
) -> None:
    """Check videos as an editor watching them would: black, frozen or flashing stretches, silence, clipping and
    loudness, the length, size and frame rate ordered, the first and last frames against their images, the jump
    at each join. One line per finding (or "pass"); exit code 1 when any video fails."""
    from .media import Expectation, check_file
    from .storage import read_source

    if size is not None and not SIZE.fullmatch(size):
        raise fail(f"--size: {size!r} is not WIDTHxHEIGHT")
    try:
        first, last = (read_source(url, option) if url else None
                       for url, option in ((reference, "--reference"), (last_image, "--last-image")))
    except ReelflowError as e:
        raise fail(str(e)) from None
    width, _, height = (size or "").partition("x")
    expect = Expectation(seconds=seconds, size=(int(width), int(height)) if size else None, fps=fps, sound=sound,
                         reference=first, last_image=last, joins=join or [])
    checked = [(video, check_file(video, expect)) for video in videos]
    if as_json:
        typer.echo(json.dumps([{"file": video, "verdict": result.verdict,
                                "findings": [finding.model_dump(mode="json") for finding in result.findings]}
                               for video, result in checked], indent=2))
    else:
        for video, result in checked:
            for line in [f"{f.verdict} {f.check}: {f.message}" for f in result.findings] or ["pass"]:
                typer.echo(printable(f"{video}: {line}"))
    if any(result.verdict == "fail" for _, result in checked):
        raise typer.Exit(1)


def _signal_of(error: BaseException) -> int | None:
    """The signal that stopped the run: Prefect turns SIGTERM into TerminationSignal inside a flow, Python
    turns SIGINT into KeyboardInterrupt, and a task group wraps either in an exception group."""
    from prefect.exceptions import TerminationSignal

    if isinstance(error, TerminationSignal):
        return error.signal
    if isinstance(error, KeyboardInterrupt):
        return signal.SIGINT
    if isinstance(error, BaseExceptionGroup):
        return next(filter(None, map(_signal_of, error.exceptions)), None)
    return None


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """A run stopped by SIGTERM (`docker stop`, systemd, CI) or Ctrl-C ends with one line and the shell's
    exit code for the signal (143, 130), whether or not the output is a terminal.

    SIGTERM raises Prefect's TerminationSignal here too, outside flows as inside them; a flow that stops on
    it sends the signal again to the handler it found, this one, so the process is not killed outright."""
    from prefect.exceptions import TerminationSignal

    def terminate(number: int, frame: object) -> None:
        raise TerminationSignal(signal=number)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except BaseException as e:
        number = _signal_of(e)
        if number is None:
            raise
        typer.echo(f"error: stopped by {signal.Signals(number).name}; what was paid for is recorded: run the same "
                   "command again to resume", err=True)
        raise typer.Exit(128 + number) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _warn(notes: list[str]) -> None:
    for note in notes:
        typer.echo(f"warning: {note}", err=True)


def announce(line: str) -> None:
    typer.echo(line, err=True)


def _user_error(error: UserError) -> typer.Exit:
    for line in str(error).splitlines():
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(2)


def _without_prefect(plan: str, error: Exception) -> PlanResult:
    """The run's outcome when the Prefect server went away before its end could be recorded there: the run went on
    without it and wrote its files, manifest and report; said in one line."""
    from flows.render_plan import finished_result

    from .prefect_server import PREFECT_GONE

    result = finished_result(plan)
    if result is None:
        raise fail(f"{PREFECT_GONE} ({error}) before the run ended; run the same command again to resume", 1)
    if not any(note.startswith(PREFECT_GONE) for note in result.warnings):  # (else the result says so, once)
        said = f"{PREFECT_GONE} ({error}) as the run ended: the Prefect UI does not show how it ended"
        result = result.model_copy(update={"warnings": [*result.warnings, said]})
    if result.failed:
        _print_result(result)
        raise typer.Exit(1)
    return result


def _print_result(result: PlanResult) -> None:
    """Each scene's outcome; of a long plan, only the scenes that did not complete, and a count of the rest (the
    manifest has each)."""
    from rich.console import Console

    chosen = any(scene.choice for scene in result.scenes)
    routed = len(result.provider.split(", ")) > 1 or any(scene.moves for scene in result.scenes)  # (routes)
    listed = (result.scenes if len(result.scenes) <= LISTED_SCENES
              else [scene for scene in result.scenes if scene.status != "completed" or scene.moves
                    or scene.qa not in (None, "pass")])
    table = _table(f"{result.plan} on {result.provider}",
                   ("scene", "status", *(("route",) if routed else ()), "seconds", *(("choice",) if chosen else ()),
                    "qa", "video"))
    for scene in listed:
        video = scene.files.get("video.mp4")
        choice = (scene.choice.describe() if scene.choice else "-",) if chosen else ()
        table.add_row(scene.id, scene.status, *((scene.route,) if routed else ()), str(scene.seconds), *choice,
                      scene.qa_said or "-", video.url if video else "-")
    console = Console(stderr=False, soft_wrap=True)
    if listed:
        console.print(table)
    if len(listed) < len(result.scenes):
        done = sum(scene.status == "completed" for scene in result.scenes)
        console.print(f"{result.plan} on {result.provider}: {done} of {len(result.scenes)} scenes completed (each "
                      f"one in {result.output}/manifest.json)", markup=False)
    for scene in result.scenes:
        for note in scene.warnings:
            console.print(f"warning: {note}", markup=False)
        if scene.moves:
            console.print(f"scene {scene.id!r}: {scene.routing}", markup=False)
        if scene.error:
            console.print(f"scene {scene.id!r} failed: {scene.error}", markup=False)
    for note in result.warnings:
        console.print(f"warning: {note}", markup=False)
    if failed := [scene.id for scene in result.scenes if scene.qa == "fail"]:
        console.print(f"{len(failed)} of the delivered takes failed their checks ({', '.join(failed)}: the qa column; "
                      "a plan's `qa: {retake: N}` makes such a take again, within its budget)", markup=False)
    if reused := result.reused_note():
        console.print(reused, markup=False)
    console.print(f"{result.plan}: {result.paid.describe(result.estimate_usd)}", markup=False)
    if result.reel:
        console.print(f"The reel: {result.reel.url}", markup=False)
    console.print(f"Videos are in {result.output}; the report: {result.output}/report.html", markup=False)


@app.command()
def jobs(
    plan: PlanArgument,
    output: Annotated[str | None, typer.Option(help="The output the plan was run on (fsspec URL); default: the "
                                               "plan's output.")] = None,
    adopt: Annotated[list[str] | None, typer.Option(help="SCENE=JOB_ID: the job the scene's unknown step made, "
                                                    "found in the provider's dashboard; the next run waits for "
                                                    "it. Repeatable.")] = None,
    retry_unknown: Annotated[bool, typer.Option(help="The next run makes the unknown steps again, paying again.")]
    = False,
) -> None:
    """List the jobs the ledger of the plan's output knows and what the provider says of them; resolve the
    steps left unknown (a create whose answer was lost on a provider that lists no jobs)."""
    from . import jobs as ledger_jobs

    settings = Settings()
    try:
        loaded = load_plan(plan)
        routed = _routed(loaded, settings, plan)
        folder = _plan_folder(loaded, settings, output)
        with ledger_jobs.Providers(settings) as providers:  # (each job asked of the route it was made on)
            for spec in adopt or []:
                adoption = ledger_jobs.adoption(routed, folder, _adopted_scene(spec, routed.scenes), providers)
                typer.echo(ledger_jobs.adopt(folder, adoption, routed.scenes, settings))
            for line in ledger_jobs.pay_again(folder, [s.id for s in routed.scenes]) if retry_unknown else []:
                typer.echo(line)
            rows = providers.asked(ledger_jobs.job_rows(routed, folder), routed)
    except UserError as e:
        raise _user_error(e) from None
    except ReelflowError as e:
        raise fail(str(e), 1) from None
    _print_jobs(rows, folder.location())


def _adopted_scene(spec: str, scenes: list[ResolvedScene]) -> tuple[ResolvedScene, str]:
    """SCENE=JOB_ID of `--adopt`: the plan's scene and the id as given."""
    scene_id, _, job_id = spec.partition("=")
    scene = next((s for s in scenes if s.id == scene_id), None)
    if not job_id.strip() or scene is None:
        known = "" if scene is not None or not job_id else f" (the plan has no scene {scene_id!r})"
        raise UserError(f"--adopt {spec[:80]!r}: write SCENE=JOB_ID{known}")
    return scene, job_id


def _print_jobs(rows: list[JobRow], where: str) -> None:
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.table import Table

    from .jobs import UNKNOWN_HELP

    table = Table(title=f"Jobs in {where}")
    routes = len({row.made_on for row in rows}) > 1  # (a plan with routes whose scenes were made on several)
    for column in ("scene", "step", "kind", "job", *(["made on"] if routes else []), "status", "recorded",
                   "provider says"):
        table.add_column(column)
    for row in rows:
        recorded = datetime.fromtimestamp(row.recorded_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(row.scene, str(row.step + 1), row.kind + ("" if row.current else " (earlier version)"),
                      row.job_id or "-", *([row.made_on] if routes else []), row.status, recorded,
                      row.provider_says or "-")
    console = Console(soft_wrap=True)
    console.print(table)
    if unknown := sum(row.status == "unknown" for row in rows):
        console.print(f"{unknown} steps are {UNKNOWN_HELP}", markup=False)


@app.command()
def providers(
    name: Annotated[str | None, typer.Argument(help="One profile, shown in full.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profiles as JSON, for programs.")] = False,
    refresh: Annotated[str | None, typer.Option(
        "--refresh", help="Write a profile of your own from this provider's live model catalog (openrouter), into "
        "--to or REELFLOW_PROVIDERS_FILE.")] = None,
    to: Annotated[Path | None, typer.Option(help="With --refresh: the profile file to write (default: "
                                            "REELFLOW_PROVIDERS_FILE).")] = None,
) -> None:
    """List the provider profiles (built in, and your own from REELFLOW_PROVIDERS_FILE) and which one a run uses;
    with NAME, one profile's models, limits and features; with --refresh NAME, write your own profile of that
    provider from its live catalog."""
    from rich.console import Console

    from ._provider_listing import detail, short_list
    from .profiles import all_profiles, load_profile
    from .providers import choose_provider

    settings = Settings()
    if refresh is not None:
        _refresh_profile(refresh, to or settings.providers_file, settings)
        return
    try:
        profiles = [load_profile(name, settings.providers_file)] if name else all_profiles(settings.providers_file)
    except UserError as e:
        raise _user_error(e) from None
    try:
        choice = choose_provider(settings)
        active, why = choice.profile.name, f"* is active: {choice.profile.name}" + (
            f", chosen by {choice.by}" if choice.by else ", no provider's credentials are set")
    except UserError as e:
        active, why = None, f"none is active: {e}"
    if as_json:
        found = profiles[0].model_dump(mode="json") if name else {
            "active": active, "profiles": [p.model_dump(mode="json") for p in profiles]}
        typer.echo(json.dumps(found, indent=2))
        return
    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console.width = 100  # a pipe or a log
    console.print(detail(profiles[0]) if name else short_list(profiles, active, f"Provider profiles ({why})"),
                  markup=False)


def _refresh_profile(name: str, file: Path | None, settings: Settings) -> None:
    """`reelflow providers --refresh NAME`: the provider's catalog, read with the user's key and base URL, written
    as a profile of the user's named NAME (in place of one so named in `file`)."""
    from .profiles import load_profile, write_own_profile
    from .providers import provider_base_url, provider_key
    from .providers.openrouter_catalog import read_catalog, refreshed_profile

    if name != "openrouter":
        raise fail(f"--refresh {name}: only openrouter publishes a catalog reelflow reads (GET /api/v1/videos/models)")
    if file is None:
        raise fail("--refresh: give --to FILE or set REELFLOW_PROVIDERS_FILE (where your own profiles live)")
    try:
        builtin = load_profile(name)
        base_url = provider_base_url(settings, builtin) or ""
        refreshed = refreshed_profile(read_catalog(base_url, provider_key(settings, builtin)), builtin)
        write_own_profile(refreshed.entry, file, refreshed.header(base_url))
        load_profile(name, file)  # it validates as any profile does
    except ReelflowError as e:  # the catalog unreachable or refused, the file unwritable
        raise fail(f"--refresh {name}: {e}") from None
    left = f"; left out (no clip reelflow can ask for): {', '.join(refreshed.left_out)}" if refreshed.left_out else ""
    typer.echo(f"Wrote profile {name!r} to {file}: {len(refreshed.entry['models'])} models from {base_url}{left}. "
               f"Runs use it while REELFLOW_PROVIDERS_FILE names {file}.")


@app.command()
def doctor(
    plan: Annotated[str | None, typer.Argument(help="Scene plan file (YAML or JSON; a path or fsspec URL): its "
                                               "provider, models and output.")] = None,
    output: Annotated[str | None, typer.Option(help="The output a run would write to (fsspec URL); default: the "
                                               "plan's output.")] = None,
) -> None:
    """Check what a run needs before anything is paid: one line each, passed, degraded or blocked, with the fix.

    The active provider's credentials (or those of each provider whose are set), its API reached within 5 s with
    the key accepted, the plan's models offered today, the output writable (and signing URLs where the provider
    fetches reference images by URL), the Prefect server. Exit code 1 when anything is blocked."""
    from .doctor import Examined, examine

    try:
        loaded = load_plan(plan) if plan else None
    except UserError as e:
        raise _user_error(e) from None
    quiet_prefect()
    keep_library_logs_off_the_terminal()
    findings = examine(Examined(loaded, Settings(), output))
    for finding in findings:
        typer.echo(printable(finding.line()))
    if any(finding.verdict == "blocked" for finding in findings):
        raise typer.Exit(1)


@app.command()
def serve() -> None:
    """Serve reelflow's deployments (a schedule, a plan form for the Prefect UI, image preparation and
    per-scene runs) from this process until Ctrl-C; flow runs are recorded where `run` records them."""
    settings = Settings()
    quiet_prefect()
    try:
        from deployments import DEPLOYMENTS, serve_deployments  # the plan form takes the active provider's limits
    except UserError as e:
        raise _user_error(e) from None

    keep_run_logs_off_the_console()
    with prefect_api(settings, announce):
        announce(f"Serving {', '.join(DEPLOYMENTS.values())}; Ctrl-C stops.")
        serve_deployments(settings)


@app.command()
def deploy(pool: Annotated[str, typer.Option(help="Process work pool (created if missing).")] = "reelflow") -> None:
    """Register the deployments with a work pool on the Prefect server of PREFECT_API_URL; start workers
    with `prefect worker start --pool POOL` wherever reelflow is installed."""
    settings = Settings()
    quiet_prefect()
    from deployments import deploy_to_pool

    with prefect_api(settings, announce):
        names = deploy_to_pool(settings, pool)
    typer.echo(f"Deployed to work pool {pool!r}: {', '.join(names)}")


@app.command()
def webhooks(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    host: Annotated[str, typer.Option(help="Address to listen on (behind your TLS proxy).")] = "127.0.0.1",
    secret: Annotated[str | None, typer.Option(
        help="The signing secret (whsec_..., or OpenRouter's workspace signing secret); default: "
        "REELFLOW_WEBHOOK_SECRET (keeps it out of `ps`).")] = None,
    inbox: Annotated[str | None, typer.Option(help="Where to record events; default: REELFLOW_WEBHOOK_INBOX.")] = None,
) -> None:
    """Receive the provider's signed video events on POST / (Standard Webhooks, or OpenRouter's
    X-OpenRouter-Signature callbacks), record them where waiting jobs look, and emit them as Prefect events.
    Forged, re-signed and stale events are refused with 400."""
    import uvicorn

    from .storage import Storage
    from .webhooks import Inbox, emit_prefect_event, receiver, standard_verifier

    settings = Settings()
    key = secret or (settings.webhook_secret.get_secret_value() if settings.webhook_secret else None)
    if not key:
        raise fail("give --secret whsec_... or set REELFLOW_WEBHOOK_SECRET")
    try:
        standard_verifier(key)
    except ValueError as e:
        raise fail(f"--secret: {e}") from None
    folder = inbox or settings.webhook_inbox
    quiet_prefect()
    with prefect_api(settings, announce):
        app = receiver(key, Inbox(Storage(folder, settings.storage_options)), emit_prefect_event)
        announce(f"Receiving video events on http://{host}:{port}/ into {folder}; Ctrl-C stops.")
        uvicorn.run(app, host=host, port=port, log_level="warning")


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port on loopback (0: a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    profile: Annotated[str, typer.Option(help="Provider profile to pose as: its dialect and limits.")] = "sandbox",
    providers_file: Annotated[Path | None, typer.Option(help="Profiles of your own, beside the built-in ones "
                                                        "(default: REELFLOW_PROVIDERS_FILE).")] = None,
    job_seconds: Annotated[float, typer.Option(help="Wall seconds each job takes.")] = 2.0,
    rpm: Annotated[int | None, typer.Option(help="Job-creating requests per minute.")] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Unfinished jobs at once.")] = None,
    faults: Annotated[str, typer.Option(
        help="Fault rates: 5xx=0.1,429=0.05,drop=0.02,lost=0.01,truncate=0.02,slow=0.05")] = "",
    fault_scope: Annotated[Literal["all", "creates"], typer.Option(help="Which requests faults hit.")] = "all",
    slow_seconds: Annotated[float, typer.Option(help="Delay of a `slow` fault.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault draws.")] = 0,
    state_dir: Annotated[Path | None, typer.Option(help="Keep jobs and media here across restarts.")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="POST signed video events here.")] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="whsec_... secret that signs events.")] = None,
    api_key: Annotated[list[str] | None, typer.Option(
        help="Accept only this key, refusing any other as the provider does (repeatable); unset: any non-empty "
        "key is accepted.")] = None,
    with_parent: Annotated[bool, typer.Option(help="Stop when standard input closes (for a program that starts the "
                                              "sandbox and may end without stopping it).")] = False,
    refuse: Annotated[list[str] | None, typer.Option(help="Refuse prompts with this word, as a moderation filter "
                                                     "does (repeatable).")] = None,
    retire: Annotated[list[str] | None, typer.Option(help="Answer creates for this model 404, as for a model "
                                                     "retired (repeatable).")] = None,
    out_of_credit: Annotated[bool, typer.Option(help="Answer every create 402, as for an account out of "
                                                "credit.")] = False,
    down_seconds: Annotated[float, typer.Option(help="Answer every request 503 for this long after starting, as in "
                                                "an outage.")] = 0,
    defect_rate: Annotated[float, typer.Option(help="Share of jobs made defective at random (black, frozen, silent, "
                                               "short, off-reference or flash), for soak tests.")] = 0,
) -> None:
    """Serve a provider's video API locally (the dialect of --profile), for demos, tests and benchmarks."""
    from .sandbox import Faults, Sandbox, SandboxConfig, serve_sandbox

    try:
        config = SandboxConfig(
            host=host, port=port, profile=profile, providers_file=providers_file or Settings().providers_file,
            job_seconds=job_seconds,
            rpm=rpm,
            max_concurrent=max_concurrent, faults=Faults.parse(faults), fault_scope=fault_scope,
            slow_seconds=slow_seconds, seed=seed, state_dir=state_dir, webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            api_keys=frozenset(api_key) if api_key else None, refuse=refuse or [], retired=retire or [],
            out_of_credit=out_of_credit, down_seconds=down_seconds, defect_rate=defect_rate,
        )
    except ValueError as e:
        raise fail(_one_line(e)) from None
    try:
        sandbox = Sandbox(config)
    except (ValueError, UserError) as e:
        raise fail(str(e)) from None
    keys = f"only the {len(api_key)} key{'s' if len(api_key) > 1 else ''} given" if api_key else "any non-empty key"
    serve_sandbox(sandbox, lambda url: typer.echo(
        f"reelflow sandbox serving {url} (profile {profile}, accepting {keys}); Ctrl-C stops it", err=True),
                  with_parent)


def _one_line(error: ValueError) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return str(error)


if __name__ == "__main__":
    app()
