"""The run report: a self-contained HTML contact sheet next to the manifest, and the same summary as
rows and Markdown for Prefect's artifacts."""

from __future__ import annotations

import base64
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from .costs import Estimate
from .errors import StorageError
from .plans import ResolvedScene
from .results import PlanResult, SceneResult
from .storage import Storage

THUMBNAIL = "thumbnail.webp"
THUMBNAIL_WIDTH = 320
_TEMPLATES = Environment(loader=PackageLoader("reelflow", "templates"), autoescape=select_autoescape(["j2"]))


@dataclass(frozen=True)
class Card:
    result: SceneResult
    prompt: str
    usd: float
    thumbnail: str | None  # a data: URL, so the report needs no other file to show pictures

    @property
    def sound(self) -> str:
        return sound_of(self.result)


def sound_of(scene: SceneResult) -> str:
    """`sound, -16.2 LUFS`, `silent`, or `-` before there is a video."""
    video = scene.video
    if video is None or video.audio is None:
        return "-"
    if not video.audio:
        return "silent"
    return "sound" + (f", {video.loudness_lufs:.1f} LUFS" if video.loudness_lufs is not None else "")


def thumbnails(result: PlanResult, storage: Storage) -> dict[str, str]:
    """Each finished scene's first frame, THUMBNAIL_WIDTH px wide, as a data: URL (so the report and the
    Prefect artifact need no other file to show pictures). Those of thumbnails this process fetched or made are
    at hand (see `remember_card`); the others are read side by side: decoding is most of it, and Pillow
    decodes outside the GIL."""
    with ThreadPoolExecutor() as pool:
        urls = pool.map(lambda scene: thumbnail_of(scene, storage), result.scenes)
        return {scene.id: url for scene, url in zip(result.scenes, urls, strict=True) if url}


def html_report(result: PlanResult, scenes: list[ResolvedScene], estimate: Estimate, pictures: dict[str, str]) -> str:
    prompts = {s.id: s.prompt for s in scenes}
    cards = [Card(r, prompts.get(r.id, ""), estimate.cost_of(r.id).usd, pictures.get(r.id)) for r in result.scenes]
    return _TEMPLATES.get_template("report.html.j2").render(
        result=result, cards=cards, estimate=estimate, total_seconds=sum(r.seconds for r in result.scenes))


def thumbnail_of(scene: SceneResult, storage: Storage) -> str | None:
    record = scene.files.get(THUMBNAIL)
    if record is None:
        return None
    if (known := _CARDS.get(record.sha256)) is not None:
        return known
    try:
        with Image.open(io.BytesIO(storage.read_bytes(scene.folder, THUMBNAIL))) as image:
            return card_picture(image)
    except (StorageError, OSError):
        return None


def card_picture(image: Image.Image) -> str:
    """A thumbnail as the report shows it: THUMBNAIL_WIDTH px wide, a JPEG data: URL."""
    scale = min(1.0, THUMBNAIL_WIDTH / max(image.size))
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.BICUBIC, reducing_gap=2.0)  # a new small picture: `image` stays
    small = small if small.mode == "RGB" else small.convert("RGB")
    out = io.BytesIO()
    small.save(out, "JPEG", quality=85)
    return f"data:image/jpeg;base64,{base64.b64encode(out.getvalue()).decode()}"


_CARDS: dict[str, str] = {}  # a thumbnail's sha256 -> its card picture, oldest first
_CARDS_KEPT = 4096
_CARDS_LOCK = threading.Lock()


def remember_card(sha256: str, image: Image.Image) -> None:
    """Keep the card picture of a thumbnail decoded anyway (to verify or make it), so the report at the end of
    the run does not read and decode it again; by content, so it is never another file's picture."""
    card = card_picture(image)
    with _CARDS_LOCK:
        _CARDS[sha256] = card
        if len(_CARDS) > _CARDS_KEPT:
            del _CARDS[next(iter(_CARDS))]


def table_rows(result: PlanResult, estimate: Estimate) -> list[dict[str, object]]:
    """The scene table's rows: scene, status and error first (the columns a page shows before it scrolls)."""
    return [{"scene": r.id, "status": r.status, "error": r.error or "", "qa": r.qa_said, "route": r.routing or r.route,
             "choice": r.choice.describe() if r.choice else "", "duration_s": r.seconds, "size": r.size,
             "audio": bool(r.video and r.video.audio),
             "loudness_lufs": r.video.loudness_lufs if r.video else None, "cost_usd": estimate.cost_of(r.id).usd,
             "job_ids": ", ".join(r.job_ids), "reused_jobs": r.reused_jobs}
            for r in result.scenes]


ARTIFACT_PICTURES = 48  # the Prefect artifact's pictures at most: every one is in the Markdown itself


def markdown_summary(result: PlanResult, estimate: Estimate, pictures: dict[str, str]) -> str:
    done = len(result.scenes) - len(result.failed)
    lines = [f"# {result.plan}", "",
             f"{done} of {len(result.scenes)} scenes rendered on **{result.provider}**, estimated "
             f"**${estimate.total_usd:.2f}**. Files: `{result.output}` (see `report.html` there).", "",
             f"This run {result.paid.describe(None)}.", ""]
    if reused := result.reused_note():
        lines += [f"{reused}.", ""]
    shown = list(pictures.items())[:ARTIFACT_PICTURES]
    for scene_id, url in shown:  # each picture captioned with its scene
        lines += [f"**{scene_id}**", "", f"![{scene_id}]({url})", ""]
    if len(pictures) > len(shown):
        lines += ["", f"The first {len(shown)} of {len(pictures)} scenes' pictures; `report.html` shows every one."]
    lines += ["", *(f"- **{r.id}**: {r.routing}" for r in result.scenes if r.moves)]
    lines += [*(f"- **{r.id}** failed: {r.error}" for r in result.failed)]
    lines += [*(f"- **{r.id}** QA: {r.qa_said}" for r in result.scenes if r.qa not in (None, "pass") or r.rejected)]
    if result.reel:
        lines.append(f"- The reel: `{result.reel.url}`")
    return "\n".join(lines)
