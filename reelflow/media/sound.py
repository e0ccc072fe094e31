"""Sound: decoded, joined without clicks, mixed, measured and normalised (FFmpeg's loudnorm and ebur128
through PyAV's filter graph), and written as AAC. Everything works on stereo float samples at 48 kHz, the
rate video providers deliver; other rates and layouts are resampled on the way in."""

from __future__ import annotations

import collections
import itertools
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import av.logging
import numpy as np
from av.container import InputContainer, OutputContainer
from numpy.typing import NDArray

RATE = 48_000
Samples = NDArray[np.float32]  # (2, n)
_CHUNK = 4096
CODEC_PEAK_HEADROOM_DB = 0.5


@dataclass(frozen=True)
class LoudnessTarget:
    """What streaming platforms ask: integrated loudness, and the most a true peak may reach."""

    integrated_lufs: float = -14.0
    true_peak_dbtp: float = -1.0
    range_lu: float = 11.0


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    true_peak_dbtp: float
    range_lu: float = 0.0
    threshold_lufs: float = -70.0  # the relative gate of the integrated loudness


def silence(samples: int) -> Samples:
    return np.zeros((2, samples), dtype=np.float32)


def decoded(container: InputContainer, samples: int) -> Samples | None:
    """The container's first audio stream, stereo at RATE, placed on the video's clock (a stream that starts
    late gets silence before it) and cut or padded to exactly `samples`; None when it has no audio."""
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=RATE)
    chunks: list[Samples] = []
    start: float | None = None
    for frame in container.decode(stream):
        if start is None and frame.pts is not None and frame.time_base is not None:
            start = float(frame.pts * frame.time_base)
        chunks += [f.to_ndarray().astype(np.float32) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().astype(np.float32) for f in resampler.resample(None)]
    sound = np.concatenate(chunks, axis=1).astype(np.float32) if chunks else silence(0)
    offset = round((start or 0.0) * RATE)
    sound = np.concatenate([silence(offset), sound], axis=1) if offset > 0 else sound[:, -offset:]
    return fitted(sound, samples)


def fitted(sound: Samples, samples: int) -> Samples:
    if sound.shape[1] >= samples:
        return sound[:, :samples]
    return np.concatenate([sound, silence(samples - sound.shape[1])], axis=1)


def fade(samples: int, rising: bool) -> NDArray[np.float32]:
    """An equal-power ramp over `samples` (sin^2 rising, cos^2 falling: the two sum to one)."""
    ramp = np.sin(np.linspace(0.0, np.pi / 2, samples, dtype=np.float64)) ** 2
    return (ramp if rising else 1.0 - ramp).astype(np.float32)


def decibels(level_db: float) -> float:
    return float(10 ** (level_db / 20))


class AacWriter:
    """Stereo float samples to an AAC stream of `container`, in the encoder's frame size."""

    def __init__(self, container: OutputContainer, bit_rate: int = 192_000) -> None:
        self.container = container
        self.stream = container.add_stream("aac", rate=RATE, layout="stereo")
        self.stream.bit_rate = bit_rate
        self.pending = silence(0)
        self.written = 0

    def write(self, sound: Samples) -> None:
        self.pending = np.concatenate([self.pending, sound], axis=1)
        size = self.stream.codec_context.frame_size or 1024
        whole = self.pending.shape[1] // size * size
        self._encode(self.pending[:, :whole], size)
        self.pending = self.pending[:, whole:]

    def close(self) -> None:
        self._encode(self.pending, max(1, self.pending.shape[1]))
        self.pending = silence(0)
        self.container.mux(self.stream.encode(None))

    def _encode(self, sound: Samples, size: int) -> None:
        for start in range(0, sound.shape[1], size):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(sound[:, start:start + size]), format="fltp",
                                               layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, self.written, Fraction(1, RATE)
            self.written += frame.samples
            self.container.mux(self.stream.encode(frame))


def _filtered(chunks: Iterable[Samples], filters: list[tuple[str, str]]) -> Iterator[Samples]:
    """`chunks` through an FFmpeg audio filter chain, back as stereo float at RATE."""
    graph = av.filter.Graph()
    chain = [graph.add_abuffer(sample_rate=RATE, format="fltp", layout="stereo", time_base=Fraction(1, RATE))]
    chain += [graph.add(name, arguments) for name, arguments in filters]
    chain += [graph.add("aresample", str(RATE)), graph.add("aformat", "sample_fmts=fltp:channel_layouts=stereo"),
              graph.add("abuffersink")]
    for before, after in itertools.pairwise(chain):
        before.link_to(after)
    graph.configure()
    pts = 0
    for chunk in chunks:
        for start in range(0, chunk.shape[1], _CHUNK):
            piece = np.ascontiguousarray(chunk[:, start:start + _CHUNK])
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, pts, Fraction(1, RATE)
            pts += piece.shape[1]
            graph.push(frame)
            yield from _pulled(graph)
    graph.push(None)
    yield from _pulled(graph)


def _pulled(graph: av.filter.Graph) -> Iterator[Samples]:
    for frame in _frames(graph):
        yield frame.to_ndarray().astype(np.float32)


def _frames(graph: av.filter.Graph) -> Iterator[av.AudioFrame]:
    """What the graph gives until it waits for more, or ends."""
    while True:
        try:
            frame = graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return
        assert isinstance(frame, av.AudioFrame)
        yield frame


_LOG_LEVEL = threading.Lock()


def _said(run: Callable[[], object]) -> str:
    """What FFmpeg says in its log (its filters' measurements) while `run` runs.

    FFmpeg's log level is one for the process: one measurement at a time raises it and puts it back (two
    threads doing it at once could leave it unset while a message arrives, which PyAV's callback chokes on)."""
    with _LOG_LEVEL:
        previous = av.logging.get_level()
        av.logging.set_level(av.logging.INFO)
        try:
            with av.logging.Capture() as messages:
                run()
        finally:
            av.logging.set_level(previous)
    return "".join(message for _, _, message in messages)


def loudness_of(video: Path) -> Loudness | None:
    """The loudness of a video's sound track, measured as FFmpeg decodes it (no sample passes through Python),
    without its true peak (oversampling costs twice the rest); None when it has none (or it does not decode)."""
    try:
        return _loudness(_said(lambda: _through_ebur128(video)))
    except av.FFmpegError:
        return None


def _through_ebur128(video: Path) -> None:
    """The video's first sound track decoded into ebur128, which logs its summary as the graph goes."""
    graph = av.filter.Graph()
    chain = [graph.add("amovie", f"filename={_option_value(str(video))}"), graph.add("ebur128", ""),
             graph.add("abuffersink")]
    for before, after in itertools.pairwise(chain):
        before.link_to(after)
    graph.configure()
    collections.deque(_frames(graph), maxlen=0)


def _option_value(text: str) -> str:
    """`text` as the value of a filter's option: its separators and quotes escaped."""
    return re.sub(r"([\\':])", r"\\\1", text)


def measure(chunks: Iterable[Samples], true_peak: bool = True) -> Loudness:
    """Integrated loudness (LUFS), true peak (dBTP; -inf when not asked for) and loudness range, by FFmpeg's
    ebur128 (EBU R 128, ITU-R BS.1770)."""
    filters = [("ebur128", "peak=true" if true_peak else "")]
    return _loudness(_said(lambda: collections.deque(_filtered(chunks, filters), maxlen=0)))


def _loudness(said: str) -> Loudness:
    """The summary ebur128 logs at its end."""
    summary = said[said.rindex("Summary:"):] if "Summary:" in said else ""
    found = {name: re.search(pattern, summary) for name, pattern in (
        ("I", r"I:\s+(-?[\d.]+|-inf) LUFS"), ("threshold", r"Threshold:\s+(-?[\d.]+|-inf) LUFS"),
        ("LRA", r"LRA:\s+(-?[\d.]+) LU"), ("peak", r"Peak:\s+(-?[\d.]+|-inf) dBFS"))}
    value = {name: _number(match.group(1)) if match else float("-inf") for name, match in found.items()}
    return Loudness(value["I"], value["peak"], max(0.0, value["LRA"]), value["threshold"])


def _number(text: str) -> float:
    return float("-inf") if text == "-inf" else float(text)


def normalised(chunks: Iterable[Samples], again: Iterable[Samples], target: LoudnessTarget) -> Iterator[Samples]:
    """The sound at `target`, in two passes over the very same sound (`chunks` measured, then `again` adjusted):
    a plain gain when its true peaks then stay under the limit (the mix itself unchanged), else FFmpeg's
    loudnorm, given the measurements, which limits the peaks as it goes. Silence stays silence."""
    found = measure(chunks)
    if found.integrated_lufs == float("-inf"):
        yield from again
        return
    gain = target.integrated_lufs - found.integrated_lufs
    # AAC encoding adds a few tenths of a dB to true peaks: the limit is kept that much lower before it.
    peak_limit = target.true_peak_dbtp - CODEC_PEAK_HEADROOM_DB
    if found.true_peak_dbtp + gain <= peak_limit:
        factor = np.float32(decibels(gain))
        for chunk in again:
            yield chunk * factor
        return
    yield from _filtered(again, [("loudnorm", f"I={target.integrated_lufs}:TP={peak_limit}:LRA={target.range_lu}:"
                                  f"measured_I={found.integrated_lufs}:measured_TP={found.true_peak_dbtp}:"
                                  f"measured_LRA={found.range_lu}:measured_thresh={found.threshold_lufs}:linear=true")])
