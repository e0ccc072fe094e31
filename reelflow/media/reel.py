"""Clips joined into one MP4 with PyAV, picture and sound: a scene stitched from its last-frame continuations,
and the plan's reel of finished scenes.

Picture: packets are copied as they are when every clip has the same codec, size and codec parameters and
nothing is dropped or blended (no quality lost, no time spent); otherwise every frame is decoded and encoded
again (H.264), letterboxed to the first clip's size. Sound: every clip's track (silence for a silent clip),
resampled to 48 kHz stereo, placed exactly under its picture (no drift however many joins), joined without a
click (a short crossfade, taken from the sound of a dropped repeated frame, or fades at a cut), crossfaded
with the picture at a transition, mixed with a music bed ducked under scenes that have sound, and
normalised to a loudness target; then written as AAC and interleaved with the picture."""

from __future__ import annotations

import contextlib
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream
from PIL import Image

from .images import letterbox
from .sound import RATE, AacWriter, LoudnessTarget, Samples, decibels, decoded, fade, fitted, normalised, silence

DEFAULT_CROSSFADE_SECONDS = 0.03


@dataclass(frozen=True)
class Music:
    """A music bed under the whole reel: looped or cut to its length, at `level_db`, and `duck_db` lower under
    scenes that have sound of their own."""

    source: BinaryIO
    level_db: float = -18.0
    duck_db: float = -12.0
    ramp_seconds: float = 0.3


@dataclass(frozen=True)
class JoinOptions:
    """How clips are joined. `seamless`: each clip after the first starts on the last frame of the one before (it
    continues from that frame), so that first frame, and its sound, are dropped rather than played twice.
    `transition_seconds`: a dissolve of picture and sound between clips (the joined video is that much shorter
    at each join). `loudness`: normalise the sound to this target. `music`: a bed under everything."""

    seamless: bool = False
    crossfade_seconds: float = DEFAULT_CROSSFADE_SECONDS
    transition_seconds: float = 0.0
    loudness: LoudnessTarget | None = None
    music: Music | None = None


@dataclass
class Joined:
    """How the picture was made ("stream copy" or "re-encoded"), and whether the result has sound."""

    picture: str
    sound: bool
    clip_frames: list[int] = field(default_factory=list)


def join_clips(sources: Sequence[BinaryIO], target: Path, options: JoinOptions | None = None) -> Joined:
    """Write the clips one after another to `target`, picture and sound."""
    options = options or JoinOptions()
    with tempfile.TemporaryDirectory(prefix="reelflow-join-") as workdir:
        picture, sound = Path(workdir) / "picture.mp4", Path(workdir) / "sound.m4a"
        how, frames, rate = _join_pictures(sources, picture, options)
        has_sound = _join_sounds(sources, sound, frames, rate, options)
        _interleaved([picture, *([sound] if has_sound else [])], target)
    return Joined(how, has_sound, frames)


# -- picture ------------------------------------------------------------------------------------------------


def _join_pictures(sources: Sequence[BinaryIO], target: Path, options: JoinOptions) -> tuple[str, list[int], Fraction]:
    """The picture alone; returns how, each clip's frames in the result, and the frame rate."""
    with contextlib.ExitStack() as stack:
        inputs = [stack.enter_context(av.open(_rewound(source), "r")) for source in sources]
        streams = [container.streams.video[0] for container in inputs]
        rate = streams[0].average_rate or Fraction(30)
        with av.open(str(target), "w", format="mp4") as output:
            if not options.seamless and not options.transition_seconds and _copyable(streams):
                return "stream copy", _copy(inputs, streams, output), rate
            return "re-encoded", _reencode(inputs, streams, output, options), rate


def _rewound(source: BinaryIO) -> BinaryIO:
    source.seek(0)
    return source


def _copyable(streams: list[VideoStream]) -> bool:
    first = streams[0].codec_context
    return all((s.codec_context.name, s.codec_context.width, s.codec_context.height, s.codec_context.pix_fmt,
                s.codec_context.extradata) == (first.name, first.width, first.height, first.pix_fmt, first.extradata)
               for s in streams)


def _copy(inputs: list[InputContainer], streams: list[VideoStream], output: OutputContainer) -> list[int]:
    out = output.add_stream_from_template(streams[0])
    offset = 0  # in the output stream's time base
    counts = []
    for container, stream in zip(inputs, streams, strict=True):
        end, count = offset, 0
        for packet in container.demux(stream):
            if packet.dts is None:
                continue  # the demuxer's flush packet
            shift = _rescale(offset, out.time_base, stream.time_base)
            packet.pts = None if packet.pts is None else packet.pts + shift
            packet.dts += shift
            end = max(end, _rescale((packet.pts or packet.dts) + (packet.duration or 0), stream.time_base,
                                    out.time_base))
            packet.stream = out
            output.mux(packet)
            count += 1
        offset = end
        counts.append(count)
    return counts


def _rescale(value: int, source: Fraction | None, target: Fraction | None) -> int:
    if source is None or target is None or source == target:
        return value
    return round(value * source / target)


def _reencode(inputs: list[InputContainer], streams: list[VideoStream], output: OutputContainer,
              options: JoinOptions) -> list[int]:
    first = streams[0].codec_context
    rate = streams[0].average_rate or Fraction(30)
    out = output.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
    out.width, out.height, out.pix_fmt = first.width, first.height, "yuv420p"
    size = (first.width, first.height)
    overlap = round(options.transition_seconds * rate)
    counts: list[int] = []
    for index, frame in enumerate(_frames(inputs, streams, options.seamless, overlap, counts)):
        if (frame.width, frame.height) != size:
            frame = av.VideoFrame.from_image(letterbox(frame.to_image(), size))  # type: ignore[no-untyped-call]
        frame.pts = index
        frame.time_base = 1 / rate
        frame.pict_type = av.video.frame.PictureType.NONE  # the encoder chooses keyframes, not the source
        output.mux(out.encode(frame))
    output.mux(out.encode(None))
    return counts


def _frames(inputs: list[InputContainer], streams: list[VideoStream], seamless: bool, overlap: int,
            counts: list[int]) -> Iterator[av.VideoFrame]:
    """Every clip's frames in turn (each later clip's first one dropped when `seamless`); with an `overlap`,
    a clip's last `overlap` frames dissolve into the next one's first. `counts` gets what each clip gave."""
    carried: list[av.VideoFrame] = []  # the end of the clip before, to dissolve into this one
    for number, (container, stream) in enumerate(zip(inputs, streams, strict=True)):
        frames = container.decode(stream)
        if seamless and number:
            next(frames, None)
        holding = overlap if number < len(inputs) - 1 else 0
        held: deque[av.VideoFrame] = deque()
        given = 0
        for frame in frames:
            given += 1
            if carried:
                frame = _blend(carried.pop(0), frame, given / (overlap + 1))
            held.append(frame)
            if len(held) > holding:
                yield held.popleft()
        counts.append(given)
        yield from carried  # a clip shorter than the dissolve: what is left of the one before
        carried = list(held)
    yield from carried


def _blend(before: av.VideoFrame, after: av.VideoFrame, weight: float) -> av.VideoFrame:
    """`after` over `before` at `weight` (0: only before, 1: only after), at `before`'s size."""
    size = (before.width, before.height)
    image = after.to_image()  # type: ignore[no-untyped-call]
    image = image if image.size == size else letterbox(image, size)
    blended: av.VideoFrame = av.VideoFrame.from_image(  # type: ignore[no-untyped-call]
        Image.blend(before.to_image(), image, weight))  # type: ignore[no-untyped-call]
    return blended


# -- sound --------------------------------------------------------------------------------------------------


def _join_sounds(sources: Sequence[BinaryIO], target: Path, frames: list[int], rate: Fraction,
                 options: JoinOptions) -> bool:
    """The sound alone, under the joined picture: False (and nothing written) when no clip has sound and
    there is no music."""
    if options.music is None and not any(_has_sound(source) for source in sources):
        return False
    with av.open(str(target), "w", format="mp4") as output:
        writer = AacWriter(output)
        if options.loudness is None:
            for chunk in _mixed(sources, frames, rate, options):
                writer.write(chunk)
        else:
            for chunk in normalised(_mixed(sources, frames, rate, options), _mixed(sources, frames, rate, options),
                                    options.loudness):
                writer.write(chunk)
        writer.close()
    return True


def _has_sound(source: BinaryIO) -> bool:
    with av.open(_rewound(source), "r") as container:
        return bool(container.streams.audio)


def _mixed(sources: Sequence[BinaryIO], frames: list[int], rate: Fraction, options: JoinOptions) -> Iterator[Samples]:
    """The joined sound, clip by clip, with the music under it."""
    bed = _MusicBed(options.music) if options.music else None
    for chunk, clip_has_sound, start in _joined(sources, frames, rate, options):
        yield chunk if bed is None else chunk + bed.under(start, chunk.shape[1], clip_has_sound)


def _joined(sources: Sequence[BinaryIO], frames: list[int], rate: Fraction, options: JoinOptions
            ) -> Iterator[tuple[Samples, bool, int]]:
    """Each clip's sound as it plays in the result: (samples, whether the clip had sound, where it starts).

    The n-th clip ends where its last frame does, at round(frames_so_far / rate * RATE) samples, so rounding
    never accumulates. A join dropped a repeated frame (seamless): the tail of the clip before crossfades
    into the dropped frame's sound. A plain cut: each side fades over `crossfade_seconds`. A transition: the
    two overlap, as the pictures do."""
    crossfade = max(1, round(options.crossfade_seconds * RATE))
    overlap = round(options.transition_seconds * rate) / rate * RATE
    held = silence(0)  # the end of the clip before, not yet written (it crossfades into the next)
    held_sound = False
    written, shown = 0, 0
    for number, (source, count) in enumerate(zip(sources, frames, strict=True)):
        dropped = 1 if options.seamless and number else 0
        with av.open(_rewound(source), "r") as container:
            lead = round(dropped / rate * RATE)
            own = round((count + dropped) / rate * RATE)
            sound = decoded(container, own)
        shown += count
        end = round(shown / rate * RATE - number * overlap)
        had_sound = sound is not None
        sound = sound if sound is not None else silence(own)
        if number and dropped and held.shape[1]:
            width = min(crossfade, lead, held.shape[1])
            held[:, -width:] = held[:, -width:] * fade(width, False) + sound[:, lead - width:lead] * fade(width, True)
        elif number and overlap and held.shape[1]:
            width = min(round(overlap), held.shape[1], sound.shape[1])
            sound[:, :width] = held[:, -width:] * fade(width, False) + sound[:, :width] * fade(width, True)
            held = held[:, :-width]
        elif number and held.shape[1]:
            width = min(crossfade, held.shape[1], sound.shape[1])
            held[:, -width:] *= fade(width, False)
            sound[:, :width] *= fade(width, True)
        if held.shape[1]:
            yield held, held_sound, written
            written += held.shape[1]
        body = fitted(sound[:, lead:], end - written)
        keep = max(crossfade, round(overlap)) if number < len(sources) - 1 else 0
        keep = min(keep, body.shape[1])
        yield body[:, :body.shape[1] - keep], had_sound, written
        written += body.shape[1] - keep
        held, held_sound = body[:, body.shape[1] - keep:].copy(), had_sound
    if held.shape[1]:
        yield held, held_sound, written


class _MusicBed:
    """The music, decoded once, looped to any length, at its level, ducked under scenes with sound."""

    def __init__(self, music: Music) -> None:
        with av.open(_rewound(music.source), "r") as container:
            stream = container.streams.audio[0]
            length = round(float((stream.duration or 0) * (stream.time_base or 0)) * RATE) or RATE
            track = decoded(container, length)
            self.samples = track if track is not None and track.shape[1] else silence(RATE)
        self.level, self.ducked = decibels(music.level_db), decibels(music.level_db + music.duck_db)
        self.ramp = max(1, round(music.ramp_seconds * RATE))
        self.gain = self.level

    def under(self, start: int, length: int, ducked: bool) -> Samples:
        positions = (np.arange(start, start + length) % self.samples.shape[1])
        piece = self.samples[:, positions]
        goal = self.ducked if ducked else self.level
        ramp = np.full(length, goal, dtype=np.float32)
        span = min(self.ramp, length)
        ramp[:span] = np.linspace(self.gain, goal, span, dtype=np.float32)
        self.gain = goal
        return (piece * ramp).astype(np.float32)


# -- together -----------------------------------------------------------------------------------------------


def _interleaved(parts: list[Path], target: Path) -> None:
    """The parts' streams in one MP4, their packets copied and interleaved by time (faststart: the index first,
    as video services serve MP4)."""
    with contextlib.ExitStack() as stack:
        inputs = [stack.enter_context(av.open(str(part), "r")) for part in parts]
        with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as output:
            pairs = [(container.streams[0], output.add_stream_from_template(container.streams[0]))
                     for container in inputs]
            packets = [_packets(container, source, out) for container, (source, out) in zip(inputs, pairs,
                                                                                              strict=True)]
            pending = [next(stream, None) for stream in packets]
            while any(p is not None for p in pending):
                index = min((i for i, p in enumerate(pending) if p is not None),
                            key=lambda i: float((pending[i].dts or 0) * pending[i].time_base))  # type: ignore[union-attr]
                packet = pending[index]
                assert packet is not None
                output.mux(packet)
                pending[index] = next(packets[index], None)


def _packets(container: InputContainer, source: av.stream.Stream, out: av.stream.Stream
             ) -> Iterator[av.Packet]:  # type: ignore[type-arg]
    for packet in container.demux(source):
        if packet.dts is None:
            continue
        packet.stream = out
        yield packet
