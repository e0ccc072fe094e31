"""The checks of a delivered take (`check_take`, `reelflow check`) on takes written here with PyAV, each defect
put in on purpose, and on the sandbox's own takes, which must pass them all."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from reelflow.media import Expectation, TakeCheck, Thresholds, check_file, check_take
from reelflow.media.reel import JoinOptions, join_clips
from reelflow.media.sound import loudness_of
from reelflow.media.video import last_frame
from reelflow.sandbox import Recipe, Segment, render
from tests.takes import BLACK_SECONDS, DEFECTS, FLASH_AT, FROZEN, Defect, corpus, expectation, picture, png

SIZE, SECONDS = (320, 180), 4.0
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def takes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return corpus(tmp_path_factory.mktemp("takes"), SIZE, SECONDS)


@pytest.fixture(scope="module")
def ordered() -> Expectation:
    return expectation(SIZE, SECONDS)


def reelflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reelflow.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=300)


def test_a_good_take_passes_every_check(takes: dict[str, Path], ordered: Expectation) -> None:
    checked = check_take(takes["good"], ordered)
    assert checked.findings == []
    assert (checked.verdict, checked.summary) == ("pass", "pass")
    assert checked.loudness_lufs is not None and -30 < checked.loudness_lufs < -10


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda defect: defect.name)
def test_each_defect_is_found_and_named(takes: dict[str, Path], ordered: Expectation, defect: Defect) -> None:
    checked = check_take(takes[defect.name], ordered)
    assert defect.check in {finding.check for finding in checked.findings}, checked.summary
    assert checked.verdict == ("warn" if defect.check in ("clipping", "join") else "fail")


def test_a_stretch_is_found_where_it_is(takes: dict[str, Path], ordered: Expectation) -> None:
    black = next(f for f in check_take(takes["black"], ordered).findings if f.check == "black")
    assert (black.at, black.seconds, black.message) == (0.0, BLACK_SECONDS, "black from 0.0 s to 1.5 s")
    frozen = next(f for f in check_take(takes["frozen"], ordered).findings if f.check == "frozen")
    assert frozen.at == pytest.approx(FROZEN[0]) and frozen.seconds == pytest.approx(FROZEN[1] - FROZEN[0])
    flash = next(f for f in check_take(takes["flash"], ordered).findings if f.check == "flash")
    assert flash.at == pytest.approx(FLASH_AT)
    jump = next(f for f in check_take(takes["jump"], ordered).findings if f.check == "join")
    assert jump.at == pytest.approx(SECONDS / 2)


@pytest.mark.parametrize("name", ["good", "clipped"])
def test_the_loudness_is_ffmpegs_ebur128s(takes: dict[str, Path], ordered: Expectation, name: str) -> None:
    """Measured in the same pass (K-weighting by FFT), within a tenth of a LU of FFmpeg's own measurement."""
    ffmpeg = loudness_of(takes[name])
    assert ffmpeg is not None
    assert check_take(takes[name], ordered).loudness_lufs == pytest.approx(ffmpeg.integrated_lufs, abs=0.1)


def test_the_summary_fits_a_table_cell(takes: dict[str, Path], ordered: Expectation) -> None:
    assert check_take(takes["black"], ordered).summary == "fail: black 0.0-1.5 s; reference"
    assert check_take(takes["silent"], ordered).summary == "fail: silent"
    assert check_take(takes["truncated"], ordered).summary == "fail: duration"


def test_thresholds_decide_what_is_a_finding(takes: dict[str, Path], ordered: Expectation) -> None:
    lenient = Thresholds(black_seconds=2.0, frozen_seconds=3.0, clipping_fraction=0.5, loudness_max_lufs=6.0,
                         duration_tolerance=SECONDS)
    for name in ("frozen", "clipped", "truncated"):
        assert check_take(takes[name], ordered, lenient).findings == [], name
    assert [f.check for f in check_take(takes["black"], ordered, lenient).findings] == ["reference"]
    with pytest.raises(ValueError, match="extra"):
        Thresholds.model_validate({"black_secs": 1})


def test_what_was_not_ordered_is_not_checked(takes: dict[str, Path]) -> None:
    unknown = Expectation()
    assert check_take(takes["silent"], unknown).findings == []  # sound not known to be asked for
    assert check_take(takes["no-sound"], unknown).findings == []
    assert check_take(takes["off-reference"], unknown).findings == []
    assert check_take(takes["no-sound"], Expectation(sound=False)).findings == []


def test_the_order_is_held_to(takes: dict[str, Path]) -> None:
    wrong = Expectation(seconds=SECONDS * 2, size=(640, 360), fps=30)
    found = {f.check: f for f in check_take(takes["good"], wrong).findings}
    assert found["duration"].message == "4.0 s long, 8 s ordered" and found["duration"].verdict == "fail"
    assert found["size"].message == "320x180, 640x360 ordered" and found["size"].verdict == "fail"
    assert found["frame_rate"].verdict == "warn"
    longer = check_take(takes["good"], Expectation(seconds=SECONDS / 2)).findings
    assert [(f.check, f.verdict) for f in longer] == [("duration", "warn")]


def test_the_last_frame_is_held_to_its_image(takes: dict[str, Path]) -> None:
    assert check_take(takes["good"], Expectation(last_image=png(picture(SIZE, 1)))).findings == []
    found = check_take(takes["good"], Expectation(last_image=png(picture(SIZE, 2)))).findings
    assert [(f.check, f.verdict) for f in found] == [("last_image", "fail")]


def test_a_file_that_does_not_decode_is_unreadable(tmp_path: Path, takes: dict[str, Path]) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 100)
    assert [f.check for f in check_take(garbage, Expectation()).findings] == ["unreadable"]
    missing = check_take(tmp_path / "missing.mp4", Expectation())
    assert missing.summary == "fail: unreadable" and "No such file" in missing.findings[0].message
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(takes["good"].read_bytes()[:5000])
    assert check_take(cut, expectation(SIZE, SECONDS)).verdict == "fail"


def test_a_take_is_read_from_an_fsspec_url(takes: dict[str, Path], ordered: Expectation) -> None:
    import fsspec

    with fsspec.open("memory://qa/black.mp4", "wb") as handle:
        handle.write(takes["black"].read_bytes())
    assert check_file("memory://qa/black.mp4", ordered).summary == "fail: black 0.0-1.5 s; reference"
    assert check_file("memory://qa/none.mp4", ordered).summary == "fail: unreadable"


def sandbox_take(recipe: Recipe, images: dict[str, bytes]) -> bytes:
    return render(recipe, images.__getitem__).video


def test_the_sandboxs_takes_pass_every_check(tmp_path: Path) -> None:
    """A take from a reference image to a last image, extended once (the provider's own extension), and two
    takes stitched here, the second continuing from the first's last frame."""
    size, images = (640, 360), {"first": png(picture((640, 360), 4)), "last": png(picture((640, 360), 5))}
    extended = Recipe(size=size, segments=[Segment(seconds=4, seed="a harbour", reference="first"),
                                           Segment(seconds=4, seed="then the sea", last_reference="last")])
    take = tmp_path / "extended.mp4"
    take.write_bytes(sandbox_take(extended, images))
    order = Expectation(seconds=8, size=size, fps=24, sound=True, reference=images["first"],
                        last_image=images["last"])
    assert check_take(take, order).findings == []
    first = sandbox_take(Recipe(size=size, segments=[Segment(seconds=4, seed="a street")]), images)
    tmp_path.joinpath("first.mp4").write_bytes(first)
    images["continued"] = png(last_frame(tmp_path / "first.mp4"))
    second = sandbox_take(Recipe(size=size, segments=[Segment(seconds=4, seed="the street goes on",
                                                              reference="continued")]), images)
    chain = tmp_path / "chain.mp4"
    join_clips([io.BytesIO(first), io.BytesIO(second)], chain, JoinOptions(seamless=True))
    checked = check_take(chain, Expectation(seconds=8, size=size, fps=24, sound=True, joins=[4.0]))
    assert checked.findings == [], checked.summary
    silent = Recipe(size=size, segments=[Segment(seconds=4, seed="no sound")], audio=False)
    take.write_bytes(sandbox_take(silent, images))
    assert check_take(take, Expectation(seconds=4, sound=False)).findings == []


def test_reelflow_check_names_each_defect_and_passes_the_good_take(tmp_path: Path, takes: dict[str, Path]) -> None:
    reference = tmp_path / "reference.png"
    Image.open(io.BytesIO(png(picture(SIZE, 1)))).save(reference)
    files = [str(takes[name]) for name in ("good", *(d.name for d in DEFECTS))]
    done = reelflow("check", *files, "--seconds", str(SECONDS), "--size", "320x180", "--fps", "24", "--reference",
                    str(reference), "--sound", "--join", str(SECONDS / 2))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert f"{takes['good']}: pass" in lines
    for defect in DEFECTS:
        named = [line for line in lines if line.startswith(f"{takes[defect.name]}: ")]
        assert any(f" {defect.check}: " in line for line in named), (defect, named)
    assert f"{takes['black']}: fail black: black from 0.0 s to 1.5 s" in lines
    listed = json.loads(reelflow("check", *files[:2], "--seconds", str(SECONDS), "--sound", "--json").stdout)
    assert [(entry["file"], entry["verdict"]) for entry in listed] == [(files[0], "pass"), (files[1], "fail")]
    assert [TakeCheck(findings=entry["findings"]).summary for entry in listed] == ["pass", "fail: black 0.0-1.5 s"]


def test_reelflow_check_exits_0_when_nothing_fails_and_says_a_mistake_in_one_line(takes: dict[str, Path]) -> None:
    done = reelflow("check", str(takes["good"]), str(takes["clipped"]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"{takes['good']}: pass"
    assert done.stdout.splitlines()[1].startswith(f"{takes['clipped']}: warn clipping: clipped: ")
    bad = reelflow("check", str(takes["good"]), "--size", "big")
    assert (bad.returncode, bad.stderr) == (2, "error: --size: 'big' is not WIDTHxHEIGHT\n")
    missing = reelflow("check", str(takes["good"]), "--reference", "/nowhere/first.png")
    assert (missing.returncode, missing.stderr) == (2, "error: --reference: /nowhere/first.png does not exist\n")
