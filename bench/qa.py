"""Take checks (`reelflow.media.check_take`) against FFmpeg's filters, on the same corpus of good and defective
takes (tests/takes.py: written with PyAV, H.264 veryfast with B-frames and AAC, as providers deliver) at 720p
and 1080p, 4 s each.

Anchor: `ffmpeg -i take.mp4 -vf blackdetect,freezedetect -af silencedetect,ebur128 -f null -` (Debian's
ffmpeg at /usr/bin/ffmpeg), run in the same run on the same files, its durations and levels set to the checks'
own thresholds (black 0.5 s at pix_th 0.10, frozen and silent 1 s, silence under -60 dB) and ebur128's
per-100 ms lines logged at verbose (not printed), so that it does no more than the checks. Its wall time is a
whole command's (its start-up is printed too).
Agreement: for each take, whether FFmpeg's filter found the defect (black_start, freeze_start, silence_start;
a take with no sound track counts as silent) as the checks did; the integrated loudness within 1 LU of
ebur128's. Flash, length, reference and join have no FFmpeg filter: the checks' findings are shown alone.
Goal: the same verdicts, and the checks at least 2x faster than the FFmpeg pass at each size.
Run: .venv/bin/python -m bench.qa
"""

from __future__ import annotations

import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from reelflow.media import TakeCheck, Thresholds, check_take
from reelflow.media.video import probe
from tests.takes import DEFECTS, corpus, expectation

FFMPEG = "/usr/bin/ffmpeg"
SIZES, SECONDS, ROUNDS, GOAL, LOUDNESS_LU = ((1280, 720), (1920, 1080)), 4.0, 3, 2.0, 1.0
FILTERED = ("black", "frozen", "silent")  # the checks FFmpeg has a filter for


@dataclass(frozen=True)
class FFmpegSays:
    """What FFmpeg's filters logged of one take."""

    found: frozenset[str]  # of FILTERED
    loudness_lufs: float | None


def ffmpeg_command(take: Path, thresholds: Thresholds) -> list[str]:
    video = (f"blackdetect=d={thresholds.black_seconds}:pix_th={thresholds.black_level}:"
             f"pic_th={thresholds.black_share},freezedetect=d={thresholds.frozen_seconds}")
    sound = f"silencedetect=n={thresholds.silence_db}dB:d={thresholds.silence_seconds},ebur128=framelog=verbose"
    return [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-i", str(take), "-vf", video, "-af", sound, "-f",
            "null", "-"]


def ffmpeg_pass(take: Path, thresholds: Thresholds) -> FFmpegSays:
    said = subprocess.run(ffmpeg_command(take, thresholds), capture_output=True, text=True, check=True).stderr
    found = {name for name, mark in (("black", "black_start:"), ("frozen", "freeze_start"),
                                     ("silent", "silence_start:")) if mark in said}
    info = probe(take)
    if info is not None and not info.audio:  # (FFmpeg filters no sound there is: none is silence to it too)
        found.add("silent")
    summary = said[said.rfind("Summary:"):] if "Summary:" in said else ""
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    lufs = float(integrated.group(1)) if integrated and integrated.group(1) != "-inf" else None
    return FFmpegSays(frozenset(found), lufs if lufs is None or lufs > -70 else None)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@dataclass
class Tally:
    agree: dict[str, int]
    takes: int = 0
    loudness_agree: int = 0
    loudness_compared: int = 0
    worst_lu: float = 0.0
    disagreements: list[str] = field(default_factory=list)


def compare(name: str, checked: TakeCheck, ffmpeg: FFmpegSays, tally: Tally) -> None:
    ours = {finding.check for finding in checked.findings}
    tally.takes += 1
    for check in FILTERED:
        same = (check in ours) == (check in ffmpeg.found)
        tally.agree[check] += same
        if not same:
            tally.disagreements.append(f"{name}: {check}: checks {check in ours}, FFmpeg {check in ffmpeg.found}")
    if checked.loudness_lufs is not None and ffmpeg.loudness_lufs is not None:
        off = abs(checked.loudness_lufs - ffmpeg.loudness_lufs)
        tally.loudness_compared += 1
        tally.loudness_agree += off <= LOUDNESS_LU
        tally.worst_lu = max(tally.worst_lu, off)


def measure(size: tuple[int, int], folder: Path, tally: Tally) -> tuple[float, float]:
    """(FFmpeg's seconds, the checks' seconds) over the corpus at `size`: medians of ROUNDS, summed."""
    takes, order, thresholds = corpus(folder, size, SECONDS), expectation(size, SECONDS), Thresholds()
    anchor, ours = 0.0, 0.0
    for name, take in takes.items():
        ffmpeg_times, check_times = [], []
        for _ in range(ROUNDS):  # alternated, so that the machine's mood weighs on both alike
            ffmpeg_times.append(timed(partial(ffmpeg_pass, take, thresholds)))
            check_times.append(timed(partial(check_take, take, order)))
        anchor, ours = anchor + statistics.median(ffmpeg_times), ours + statistics.median(check_times)
        checked = check_take(take, order)
        compare(f"{name} {size[1]}p", checked, ffmpeg_pass(take, thresholds), tally)
        print(f"  {name:>14} {size[1]}p: checks {checked.summary}", flush=True)
    return anchor, ours


def start_up() -> float:
    """An FFmpeg command that decodes nothing: what each anchor run pays before its first frame."""
    return statistics.median(timed(lambda: subprocess.run([FFMPEG, "-hide_banner", "-version"], capture_output=True,
                                                          check=True)) for _ in range(5))


def main() -> int:
    tally = Tally(agree=dict.fromkeys(FILTERED, 0))
    ratios = []
    with tempfile.TemporaryDirectory() as workdir:
        for size in SIZES:
            anchor, ours = measure(size, Path(workdir), tally)
            ratios.append(anchor / ours)
            print(f"{size[0]}x{size[1]}, {len(DEFECTS) + 1} takes of {SECONDS:g} s: FFmpeg pass {anchor:.2f} s, "
                  f"checks {ours:.2f} s (medians of {ROUNDS}): {anchor / ours:.2f}x faster")
    print(f"FFmpeg's start-up (ffmpeg -version): {start_up() * 1000:.0f} ms a command, in the anchor's time")
    for check in FILTERED:
        print(f"agreement {check}: {tally.agree[check]} of {tally.takes} takes")
    print(f"agreement loudness (within {LOUDNESS_LU:g} LU of ebur128): {tally.loudness_agree} of "
          f"{tally.loudness_compared} takes with sound (largest difference {tally.worst_lu:.2f} LU)")
    for line in tally.disagreements:
        print(f"  differs: {line}")
    agreed = all(count == tally.takes for count in tally.agree.values()) and (
        tally.loudness_agree == tally.loudness_compared)
    fast = min(ratios) >= GOAL
    print(f"same verdicts: {'PASS' if agreed else 'FAIL'}; speed {min(ratios):.2f}x at the slowest size "
          f"(goal >= {GOAL:g}x): {'PASS' if fast else 'FAIL'}")
    return 0 if agreed and fast and math.isfinite(min(ratios)) else 1


if __name__ == "__main__":
    sys.exit(main())
