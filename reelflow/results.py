"""What a run produced: per-scene results and the plan's manifest."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .media.checks import TakeCheck, TakeVerdict

RANKS: tuple[TakeVerdict, ...] = ("pass", "warn", "fail")  # best first


class FileRecord(BaseModel):
    url: str = Field(description="Where the file is, as an fsspec URL.")
    bytes: int = Field(description="Size in bytes.")
    sha256: str = Field(description="SHA-256 of the content, hex.")
    seconds: float | None = Field(default=None, description="A video's length, as a player sees it.")
    audio: bool | None = Field(default=None, description="Whether a video has a sound track.")
    loudness_lufs: float | None = Field(default=None, description="A video's integrated loudness (EBU R 128).")
    job: str | None = Field(default=None, description="The provider's job whose video it is, or was made from.")
    checks: TakeCheck | None = Field(default=None, description="What the take checks found in a scene's video, as "
                                     "it was delivered.")


class RejectedTake(BaseModel):
    """A take that failed its checks and was made again (`qa: retake`): its jobs, and its files, kept beside the
    scene's under their own names (video.rejected1.mp4, ...)."""

    number: int = Field(description="1: the first take made again.")
    jobs: list[str] = Field(description="Its jobs, in order.")
    files: dict[str, FileRecord] = Field(default_factory=dict, description="Its files by their kept names.")

    @property
    def checks(self) -> TakeCheck | None:
        return next((record.checks for record in self.files.values() if record.checks is not None), None)


def rejected_name(name: str, number: int) -> str:
    """Where a file of a take made again is kept: `video.mp4` -> `video.rejected1.mp4`."""
    stem, dot, extension = name.rpartition(".")
    return f"{stem}.rejected{number}{dot}{extension}" if dot else f"{name}.rejected{number}"


class Choice(BaseModel):
    """What became of a scene that had takes, or was reviewed: a take kept, a redo, or the scene dropped."""

    kind: Literal["keep", "redo", "drop"]
    take: int | None = Field(default=None, description="The take kept (1: the first).")
    prompt: str | None = Field(default=None, description="A redo's prompt.")
    by: Literal["review", "earlier review", "timeout", "checks"] = Field(
        description="Who chose: a person (now or in an earlier run), a review that timed out, or nobody (no review: "
        "the best take by the checks, pass over warn over fail, then fewer findings, then the first).")

    def describe(self) -> str:
        what = {"keep": f"take {self.take} kept", "redo": "redone", "drop": "dropped"}[self.kind]
        return f"{what} ({'best by the checks' if self.by == 'checks' else self.by})"


class SceneResult(BaseModel):
    id: str
    status: Literal["completed", "failed", "dropped"]
    job_ids: list[str] = Field(default_factory=list, description="Every job created for the scene as it is now, "
                               "in order.")
    reused_jobs: int = Field(default=0, description="Jobs this run took from earlier runs (not paid again).")
    size: str
    seconds: int = Field(description="Length of the finished video (extensions included).")
    files: dict[str, FileRecord] = Field(default_factory=dict, description="Outputs by file name.")
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    take: str | None = Field(default=None, description="The folder whose files are the scene's (a take, a redo), "
                             "when not the scene's own.")
    takes: list[str] = Field(default_factory=list, description="The folders of every take rendered for the scene.")
    choice: Choice | None = None
    route: str = Field(default="", description="Where it was rendered (or last tried): the provider and model.")
    moves: list[str] = Field(default_factory=list, description="Each route it left for the next, and why.")
    qa: TakeVerdict | None = Field(default=None, description="Its video's verdict by the take checks (the findings are "
                               "its video's `checks`); none when nothing was delivered.")
    rejected: list[RejectedTake] = Field(default_factory=list, description="Its takes that failed their checks and "
                                         "were made again.")

    @property
    def checks(self) -> TakeCheck | None:
        """What the checks found in its video."""
        return self.video.checks if self.video else None

    @property
    def rank(self) -> tuple[int, int]:
        """How good a take is by its checks, lower better: pass, warn, fail (or unchecked), then fewer findings."""
        checks = self.checks
        if checks is None:
            return len(RANKS), 0
        return RANKS.index(checks.verdict), len(checks.findings)

    @property
    def qa_said(self) -> str:
        """The QA column: `pass`, `fail: black 0.0-1.5 s; ...`, with `(retaken 1x)` when it was made again."""
        said = self.checks.summary if self.checks else ""
        return said + (f" (retaken {len(self.rejected)}x)" if self.rejected else "")

    @property
    def routing(self) -> str:
        """`openrouter google/veo-3.1-fast refused it (moderation_blocked); rendered by fal kling-v3-pro`; empty
        for a scene that never moved."""
        if not self.moves:
            return ""
        return "; ".join([*self.moves, f"{'rendered' if self.status == 'completed' else 'failed'} by {self.route}"])

    @property
    def video(self) -> FileRecord | None:
        return self.files.get("video.mp4")

    @property
    def folder(self) -> str:
        return self.take or self.id


class Paid(BaseModel):
    """What a run paid for: every job it made (takes, redos and retries included), at list price, and what the
    providers said they billed for those that said."""

    jobs: int = 0
    list_usd: float = Field(default=0.0, description="The jobs' cost at the profiles' list prices.")
    billed_usd: float | None = Field(default=None, description="What the providers billed, summed over the jobs "
                                     "that say (`billed_jobs` of them).")
    billed_jobs: int = 0
    unknown_jobs: int = Field(default=0, description="Creates whose answer was lost: they may have been paid.")

    def describe(self, estimate_usd: float | None) -> str:
        """`paid 3 jobs, $1.20 at list price (billed $1.10 for 3 of them); estimated $1.20`."""
        line = f"paid {self.jobs} {'job' if self.jobs == 1 else 'jobs'}, ${self.list_usd:.2f} at list price"
        if self.billed_usd is not None:
            line += f" (billed ${self.billed_usd:.2f} for {self.billed_jobs} of them)"
        if self.unknown_jobs:
            line += f"; {self.unknown_jobs} more may have been made (their answers were lost)"
        return line + (f"; estimated ${estimate_usd:.2f}" if estimate_usd is not None else "")


class PlanResult(BaseModel):
    plan: str
    provider: str = Field(description="The providers it rendered on (a plan with routes: each, comma-separated).")
    output: str = Field(description="URL of the plan's output folder.")
    scenes: list[SceneResult]
    estimate_usd: float | None = Field(default=None, description="The plan's cost at list prices.")
    paid: Paid = Field(default_factory=Paid, description="What this run paid for.")
    reel: FileRecord | None = Field(default=None, description="The scenes joined in order, when the plan asks.")
    warnings: list[str] = Field(default_factory=list)

    @property
    def failed(self) -> list[SceneResult]:
        return [s for s in self.scenes if s.status == "failed"]

    @property
    def kept(self) -> list[SceneResult]:
        """The scenes in the reel: all but those a reviewer dropped."""
        return [s for s in self.scenes if s.status != "dropped"]

    def reused_note(self) -> str | None:
        """What this run took from earlier runs, if anything."""
        reused = sum(scene.reused_jobs for scene in self.scenes)
        if not reused:
            return None
        jobs = "1 job" if reused == 1 else f"{reused} jobs"
        return f"{jobs} made by earlier runs on this output {'was' if reused == 1 else 'were'} reused, not paid again"

    def summary(self) -> str:
        done = len(self.scenes) - len(self.failed)
        lines = [f"{self.plan}: {done} of {len(self.scenes)} scenes rendered to {self.output}"]
        lines += [f"  scene {s.id!r} failed: {s.error}" for s in self.failed]
        return "\n".join(lines)
