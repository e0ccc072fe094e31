"""The final reel: finished scenes joined in plan order into one MP4 with PyAV.

Packets are copied as they are when every clip has the same codec, size and codec parameters (no
quality lost, no time spent); otherwise every frame is decoded and encoded again (H.264), letterboxed
to the first clip's size."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

from .images import letterbox


def join_clips(sources: list[BinaryIO], target: Path, *, seamless: bool = False) -> str:
    """Write the clips one after another to `target`; returns how: "stream copy" or "re-encoded".

    `seamless`: each clip after the first starts on the last frame of the one before (it continues from that
    frame), so that first frame is dropped rather than shown twice; dropping a keyframe means re-encoding."""
    with contextlib.ExitStack() as stack:
        inputs = [stack.enter_context(av.open(source, "r")) for source in sources]
        streams = [container.streams.video[0] for container in inputs]
        with av.open(str(target), "w", format="mp4") as output:
            if not seamless and _copyable(streams):
                _copy(inputs, streams, output)
                return "stream copy"
            _reencode(inputs, streams, output, drop_first_frames=seamless)
            return "re-encoded"


def _copyable(streams: list[VideoStream]) -> bool:
    first = streams[0].codec_context
    return all((s.codec_context.name, s.codec_context.width, s.codec_context.height, s.codec_context.pix_fmt,
                s.codec_context.extradata) == (first.name, first.width, first.height, first.pix_fmt, first.extradata)
               for s in streams)


def _copy(inputs: list[InputContainer], streams: list[VideoStream], output: OutputContainer) -> None:
    out = output.add_stream_from_template(streams[0])
    offset = 0  # in the output stream's time base
    for container, stream in zip(inputs, streams, strict=True):
        end = offset
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
        offset = end


def _rescale(value: int, source: Fraction | None, target: Fraction | None) -> int:
    if source is None or target is None or source == target:
        return value
    return round(value * source / target)


def _reencode(inputs: list[InputContainer], streams: list[VideoStream], output: OutputContainer,
              drop_first_frames: bool) -> None:
    first = streams[0].codec_context
    rate = streams[0].average_rate or Fraction(30)
    out = output.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
    out.width, out.height, out.pix_fmt = first.width, first.height, "yuv420p"
    size = (first.width, first.height)
    for index, frame in enumerate(_frames(inputs, streams, drop_first_frames)):
        if (frame.width, frame.height) != size:
            frame = av.VideoFrame.from_image(letterbox(frame.to_image(), size))  # type: ignore[no-untyped-call]
        frame.pts = index
        frame.time_base = 1 / rate
        frame.pict_type = av.video.frame.PictureType.NONE  # the encoder chooses keyframes, not the source
        output.mux(out.encode(frame))
    output.mux(out.encode(None))


def _frames(inputs: list[InputContainer], streams: list[VideoStream], drop_first_frames: bool
            ) -> Iterator[av.VideoFrame]:
    for number, (container, stream) in enumerate(zip(inputs, streams, strict=True)):
        frames = container.decode(stream)
        if drop_first_frames and number:
            next(frames, None)
        yield from frames
