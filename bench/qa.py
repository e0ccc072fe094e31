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
import os
import re
import resource
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
SIZES, SECONDS, ROUNDS, GOAL, LOUDNESS_LU = ((1280, 720), (1920, 1080)), 4.0, 5, 2.0, 1.0
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
    found = {name for name, mark in (("black", "black_start:"), ("silent", "silence_start:")) if mark in said}
    if _frozen_beside_black(said):
        found.add("frozen")
    info = probe(take)
    if info is not None and not info.audio:  # (FFmpeg filters no sound there is: none is silence to it too)
        found.add("silent")
    summary = said[said.rfind("Summary:"):] if "Summary:" in said else ""
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    lufs = float(integrated.group(1)) if integrated and integrated.group(1) != "-inf" else None
    return FFmpegSays(frozenset(found), lufs if lufs is None or lufs > -70 else None)


def _frozen_beside_black(said: str) -> bool:
    """Whether freezedetect found a stretch blackdetect did not find black (black frames are frozen too, to
    FFmpeg; the checks name them black alone)."""
    black = [(float(a), float(b)) for a, b in re.findall(r"black_start:([\d.]+) black_end:([\d.]+)", said)]
    starts = [float(at) for at in re.findall(r"freeze_start: ([\d.]+)", said)]
    ends = [float(at) for at in re.findall(r"freeze_end: ([\d.]+)", said)] + [math.inf] * len(starts)
    return any(not any(a - 0.1 <= start and end <= b + 0.1 for a, b in black) for start, end in zip(starts, ends,
                                                                                                      strict=False))


@dataclass(frozen=True)
class Spent:
    """Wall seconds, and CPU seconds of every thread (the decoders' too; FFmpeg's: its process's)."""

    wall: float
    cpu: float


def timed(action: Callable[[], object]) -> Spent:
    started, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    action()
    return Spent(time.perf_counter() - started, time.process_time() - cpu + _children_cpu() - children)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median(spent: list[Spent]) -> Spent:
    return Spent(statistics.median(s.wall for s in spent), statistics.median(s.cpu for s in spent))


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


def measure(size: tuple[int, int], folder: Path, tally: Tally) -> tuple[Spent, Spent]:
    """(FFmpeg's time, the checks' time) over the corpus at `size`: each take's median of ROUNDS, summed."""
    takes, order, thresholds = corpus(folder, size, SECONDS), expectation(size, SECONDS), Thresholds()
    anchor, ours = Spent(0, 0), Spent(0, 0)
    for name, take in takes.items():
        ffmpeg_times, check_times = [], []
        for _ in range(ROUNDS):  # alternated, so that the machine's mood weighs on both alike
            ffmpeg_times.append(timed(partial(ffmpeg_pass, take, thresholds)))
            check_times.append(timed(partial(check_take, take, order)))
        anchor, ours = _sum(anchor, median(ffmpeg_times)), _sum(ours, median(check_times))
        checked = check_take(take, order)
        compare(f"{name} {size[1]}p", checked, ffmpeg_pass(take, thresholds), tally)
        print(f"  {name:>14} {size[1]}p: checks {checked.summary}", flush=True)
    return anchor, ours


def _sum(a: Spent, b: Spent) -> Spent:
    return Spent(a.wall + b.wall, a.cpu + b.cpu)


def start_up() -> Spent:
    """An FFmpeg command that decodes nothing: what each anchor run pays before its first frame."""
    return median([timed(partial(subprocess.run, [FFMPEG, "-hide_banner", "-version"], capture_output=True,
                                 check=True)) for _ in range(5)])


def main() -> int:
    tally = Tally(agree=dict.fromkeys(FILTERED, 0))
    ratios = []
    with tempfile.TemporaryDirectory() as workdir:
        for size in SIZES:
            anchor, ours = measure(size, Path(workdir), tally)
            ratios.append(anchor.wall / ours.wall)
            print(f"{size[0]}x{size[1]}, {len(DEFECTS) + 1} takes of {SECONDS:g} s (medians of {ROUNDS}): FFmpeg "
                  f"pass {anchor.wall:.2f} s, checks {ours.wall:.2f} s: {anchor.wall / ours.wall:.2f}x faster; CPU "
                  f"{anchor.cpu:.2f} vs {ours.cpu:.2f} s: {anchor.cpu / ours.cpu:.2f}x", flush=True)
    started = start_up()
    print(f"FFmpeg's start-up (ffmpeg -version), in each of the anchor's runs: {started.wall * 1000:.0f} ms "
          f"({started.cpu * 1000:.0f} ms CPU); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
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
