"""Reel assembly: ten 6 s 1280x720 scenes with sound joined into one reel, its sound normalised to -14 LUFS.

Anchor: a plain PyAV concat of the same clips, in this process: the picture's packets copied, the sound decoded
and encoded again as one AAC track (a concat that keeps the sound must: AAC packets of several clips do not
join without gaps). Shown too: the floor, every packet of both streams copied (sound with a gap at each join).
Goal: at most 5x the anchor's time (the sound also placed sample-exactly under its picture, faded at each cut,
measured by FFmpeg's ebur128 and brought to the target; then interleaved with the picture). The sandbox's
sound has a pulse every second, peaks a plain gain would clip, so loudnorm limits them: its true-peak limiter
runs at 192 kHz and is most of the difference (sound at a usual crest factor takes the plain gain).
Run: .venv/bin/python -m bench.reel
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av

from reelflow.media.reel import JoinOptions, join_clips
from reelflow.media.sound import LoudnessTarget
from reelflow.sandbox import Recipe, Segment, render

SCENES, SECONDS, ROUNDS, GOAL = 10, 6, 3, 5.0


def plain_concat(clips: list[bytes], target: Path) -> None:
    """Every packet of every stream copied, each stream continuing where its own part of the clip before ended."""
    with av.open(str(target), "w", format="mp4") as output, av.open(io.BytesIO(clips[0]), "r") as first:
        outs = [output.add_stream_from_template(stream) for stream in first.streams]
        ends = [0] * len(outs)  # in each output stream's time base
        for clip in clips:
            with av.open(io.BytesIO(clip), "r") as source:
                shifts: dict[int, int] = {}
                for packet in source.demux():
                    if packet.dts is None:
                        continue
                    index = packet.stream.index
                    shift = shifts.setdefault(index, ends[index] - packet.dts)
                    packet.dts += shift
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    ends[index] = max(ends[index], packet.dts + (packet.duration or 1))
                    packet.stream = outs[index]
                    output.mux(packet)


def plain_join(clips: list[bytes], target: Path) -> None:
    """The picture's packets copied; the sound decoded and encoded again, one clip after the other."""
    with av.open(str(target), "w", format="mp4") as output, av.open(io.BytesIO(clips[0]), "r") as first:
        picture = output.add_stream_from_template(first.streams.video[0])
        voice = output.add_stream("aac", rate=48000, layout="stereo")
        shown, heard = 0, 0
        for clip in clips:
            with av.open(io.BytesIO(clip), "r") as source:
                shift = None
                for packet in source.demux(source.streams.video[0]):
                    if packet.dts is None:
                        continue
                    shift = shown - packet.dts if shift is None else shift
                    packet.dts += shift
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    shown = max(shown, packet.dts + (packet.duration or 1))
                    packet.stream = picture
                    output.mux(packet)
            with av.open(io.BytesIO(clip), "r") as source:
                for frame in source.decode(source.streams.audio[0]):
                    frame.pts = heard
                    heard += frame.samples
                    output.mux(voice.encode(frame))
        output.mux(voice.encode(None))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    clips = [render(Recipe(size=(1280, 720), segments=[Segment(seconds=SECONDS, seed=f"scene {n}")]),
                    lambda key: b"").video for n in range(SCENES)]
    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir)
        floors, anchors, ours = [], [], []
        for _ in range(ROUNDS):
            floors.append(timed(lambda: plain_concat(clips, folder / "copied.mp4")))
            anchors.append(timed(lambda: plain_join(clips, folder / "plain.mp4")))
            ours.append(timed(lambda: join_clips([io.BytesIO(c) for c in clips], folder / "reel.mp4",
                                                 JoinOptions(loudness=LoudnessTarget()))))
    floor, anchor, reel = statistics.median(floors), statistics.median(anchors), statistics.median(ours)
    ratio = reel / anchor
    print(f"every packet copied ({SCENES} x {SECONDS} s clips): {floor:.2f} s (median of {ROUNDS})")
    print(f"anchor plain PyAV concat, the sound encoded again: {anchor:.2f} s")
    print(f"reelflow reel (sound joined and normalised to -14 LUFS): {reel:.2f} s")
    print(f"ratio {ratio:.2f}x the anchor (goal <= {GOAL:g}x): {'PASS' if ratio <= GOAL else 'FAIL'}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
