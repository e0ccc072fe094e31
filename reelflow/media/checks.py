"""Checks of a delivered take, the ones an editor makes by watching it: black or frozen stretches, hard
flashes, silence where sound was asked for, clipping and loudness, length, frame rate and size against the
order, the first and last frames against the images asked for, and the jump at each join of a chain.

All of it in one streamed decode pass (PyAV), H.264's deblocking skipped: nothing is kept but a few numbers a
frame and the thumbnails of the first, last and latest frames. A frame is summed up from its decoded planes as
they lie in memory, without scaling: a grid of about 160 x 90 of its pixels (every n-th, in both directions),
averaged in cells of 5 x 5 into a 32-cell-wide thumbnail. Black, mean luma and the likeness to an image come
from the luma; "unchanged since the frame before" from the largest change of any cell of the thumbnails of
the luma and, when the luma has not changed, of both chromas (averaging first keeps the encoder's noise out, a
small moving thing still moves a cell).

Loudness is EBU R 128's integrated loudness (ITU-R BS.1770-4: 400 ms blocks overlapping by 75 %, an absolute
gate at -70 LUFS, a relative one 10 LU under), with the K-weighting applied in the frequency domain: each
100 ms of each channel through an FFT, its power weighted by the K filter's response (the standard's two 48 kHz
biquads), summed. It leaves out the filter's transients at block edges: within 0.05 LU of FFmpeg's ebur128 on
bench/qa.py's takes, well inside the loudness range a take is held to. Channels are weighted alike (no
surround weights)."""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import av
import fsspec
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field

from ..storage import unreadable

Check = Literal["black", "frozen", "flash", "silent", "clipping", "loudness", "duration", "frame_rate", "size",
                "reference", "last_image", "join", "unreadable"]
Verdict = Literal["warn", "fail"]  # a finding's
TakeVerdict = Literal["pass", "warn", "fail"]  # a take's: the worst of its findings'

_COLUMNS = 32  # cells across a thumbnail
_SAMPLES = 5  # pixels sampled across (and down) a cell
_PLANAR = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}  # read as they lie (8-bit)
FLASH_SECONDS = 0.25  # the longest a flash lasts: a change that stays longer is a cut, not a flash
FULL_SCALE = 0.99  # a sample this loud (of 1.0) is clipped
_WINDOWS = 10  # silence is looked for in tenths of a loudness block: 10 ms
_BATCH = 10  # loudness blocks measured at once (numpy's calls cost more than their work on one 100 ms block)


class Thresholds(BaseModel):
    """When a take's measurements make a finding. Every level has a default an editor would agree with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    black_level: float = Field(default=0.10, ge=0, le=1, description="A pixel is black at or under this share "
                               "of the luma range (FFmpeg blackdetect's pix_th).")
    black_share: float = Field(default=0.98, gt=0, le=1, description="A frame is black when at least this share "
                               "of its pixels is (blackdetect's pic_th).")
    black_seconds: float = Field(default=0.5, gt=0, description="Black frames this long or longer are a finding.")
    frozen_level: float = Field(default=1.0, ge=0, description="A frame is unchanged when no cell of its "
                                "32-cell-wide thumbnail (luma or chroma) moved by more than this many 8-bit levels.")
    frozen_seconds: float = Field(default=1.0, gt=0, description="Unchanged frames this long or longer are a "
                                  "finding.")
    flash_jump: float = Field(default=40.0, gt=0, description="A flash: the whole frame's mean luma jumps by at "
                              f"least this many 8-bit levels and comes back within {FLASH_SECONDS} s.")
    silence_db: float = Field(default=-60.0, le=0, description="Sound is silent under this peak level (dBFS).")
    silence_seconds: float = Field(default=1.0, gt=0, description="Silence this long or longer is a finding.")
    clipping_fraction: float = Field(default=0.001, ge=0, le=1, description="Clipped when more than this share "
                                     f"of the samples is at full scale (|x| >= {FULL_SCALE}).")
    loudness_min_lufs: float = Field(default=-40.0, description="Integrated loudness under this (LUFS) is too "
                                     "quiet.")
    loudness_max_lufs: float = Field(default=-5.0, description="Integrated loudness over this (LUFS) is too loud.")
    duration_tolerance: float = Field(default=0.5, ge=0, description="Seconds a take may be shorter or longer "
                                      "than ordered.")
    frame_rate_tolerance: float = Field(default=0.5, ge=0, description="Frames per second the take may differ "
                                        "from the order.")
    reference_psnr_db: float = Field(default=20.0, ge=0, description="The first (last) frame matches its image "
                                     "when their luma thumbnails are at least this close (PSNR, dB).")
    join_jump: float = Field(default=30.0, gt=0, description="A jump at a join: the frames either side of it "
                             "differ by more than this mean of 8-bit luma levels (thumbnails).")


DEFAULT_THRESHOLDS = Thresholds()


class Expectation(BaseModel):
    """What the take was ordered as (None: not known, not checked)."""

    seconds: float | None = None
    size: tuple[int, int] | None = None
    fps: float | None = None
    sound: bool | None = Field(default=None, description="True: sound was asked for or is the model's default "
                               "(silence is a finding); False: none asked for; None: unknown (no silence check).")
    reference: bytes | None = Field(default=None, description="The image the take should start from (its exact "
                                    "size).")
    last_image: bytes | None = Field(default=None, description="The image the take should end on.")
    joins: list[float] = Field(default_factory=list, description="Seconds where a chain stitched here joins.")


class Finding(BaseModel):
    check: Check
    verdict: Verdict
    at: float | None = Field(default=None, description="Where it starts (seconds into the take).")
    seconds: float | None = Field(default=None, description="How long it lasts.")
    message: str = Field(description="One line for a person, e.g. 'black from 0.0 s to 1.5 s'.")

    @property
    def short(self) -> str:
        """The finding in a few characters, for a table cell: 'black 0.0-1.5 s', 'flash 2.0 s', 'silent'."""
        if self.at is None:
            return self.check
        if self.seconds is None:
            return f"{self.check} {self.at:.1f} s"
        return f"{self.check} {self.at:.1f}-{self.at + self.seconds:.1f} s"


class TakeCheck(BaseModel):
    findings: list[Finding] = Field(default_factory=list)
    loudness_lufs: float | None = Field(default=None, description="The sound's integrated loudness (None: no "
                                        "sound, or silence).")

    @property
    def verdict(self) -> TakeVerdict:
        verdicts = {finding.verdict for finding in self.findings}
        return "fail" if "fail" in verdicts else "warn" if verdicts else "pass"

    @property
    def summary(self) -> str:
        """'pass', or the verdict and each finding in short: 'fail: black 0.0-1.5 s; silent'."""
        if not self.findings:
            return "pass"
        return f"{self.verdict}: " + "; ".join(finding.short for finding in self.findings)


def check_take(video: Path | BinaryIO, expect: Expectation, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> TakeCheck:
    """Every check of a take, in one pass over its decoded picture and sound (a local file or an open,
    seekable file, e.g. fsspec's)."""
    pictures, sound = _Pictures(thresholds, expect.joins), _Sound()
    try:
        with av.open(str(video) if isinstance(video, Path) else video, "r") as container:
            _decode(container, pictures, sound)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        return _checked(pictures, sound, _Order(expect, thresholds), _finding("unreadable", "fail", _reason(e),
                                                                                pictures.end))
    if not pictures.count:
        return TakeCheck(findings=[_finding("unreadable", "fail", "no picture (no video stream, or no frame of it "
                                            "decodes)")])
    return _checked(pictures, sound, _Order(expect, thresholds))


def check_file(url: str, expect: Expectation, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> TakeCheck:
    """`check_take` of a path or fsspec URL (read as it is decoded, not downloaded first)."""
    if "://" not in url:
        return check_take(Path(url), expect, thresholds)
    try:
        handle = fsspec.open(url, "rb").open()
    except Exception as e:  # any fsspec backend's failure
        return TakeCheck(findings=[_finding("unreadable", "fail", unreadable(url, e))])
    with handle:
        return check_take(handle, expect, thresholds)


def _reason(error: Exception) -> str:
    """Why a take cannot be checked (to its end), in a few words."""
    if isinstance(error, OSError) and error.strerror:
        return f"cannot be read: {error.strerror}"
    return f"cannot be decoded: {error or type(error).__name__}"


def _decode(container: av.container.InputContainer, pictures: _Pictures, sound: _Sound) -> None:
    """The first picture and sound streams, decoded as they are stored (interleaved), each frame summed up."""
    if not container.streams.video:
        return
    picture = container.streams.video[0]
    # Slice threads only: frame threads cost a sixth more CPU a frame (handing frames between threads) and, with
    # the cores busy (a run checks each scene's take as it arrives, many at once), take longer too.
    picture.thread_type = "SLICE"
    # The deblocking filter smooths block edges by a few levels: nothing a cell's average or a black pixel's level
    # notices, and a fifth to a third of H.264's decoding time.
    picture.codec_context.options = {"skip_loop_filter": "all"}
    pictures.rate = float(picture.average_rate or picture.guessed_rate or 0)
    streams = [picture, *container.streams.audio[:1]]
    sound.present = len(streams) > 1
    for packet in container.demux(*streams):
        for frame in packet.decode():
            if isinstance(frame, av.VideoFrame):
                pictures.add(frame)
            elif isinstance(frame, av.AudioFrame):
                sound.add(frame)


def _finding(check: Check, verdict: Verdict, message: str, at: float | None = None,
             seconds: float | None = None) -> Finding:
    return Finding(check=check, verdict=verdict, at=at, seconds=seconds, message=message)


# The picture -------------------------------------------------------------------------------------------------------

Thumbnail = NDArray[np.float32]


def _planes(frame: av.VideoFrame) -> list[NDArray[np.uint8]]:
    """The frame's planes as numpy views of the decoder's memory (8-bit planar YUV; anything else converted)."""
    if frame.format.name not in _PLANAR:
        frame = frame.reformat(format="yuv420p")
    return [np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[:plane.height, :plane.width]
            for plane in frame.planes]


def _grid(plane: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Every n-th pixel across and down: about _COLUMNS * _SAMPLES across."""
    step = max(1, plane.shape[1] // (_COLUMNS * _SAMPLES))
    return plane[::step, ::step]


def _thumbnail(grid: NDArray[np.uint8]) -> Thumbnail:
    """The grid averaged in cells of about _SAMPLES x _SAMPLES, _COLUMNS of them across. Summed as 16-bit
    integers, a cell's columns then its rows added as strided slices (a cell of the grid is at most 9 x 9, its
    sum under 2**16): a tenth of the time of numpy's mean over the grid reshaped."""
    cell = max(1, grid.shape[1] // _COLUMNS)
    values = grid[:grid.shape[0] // cell * cell, :grid.shape[1] // cell * cell].astype(np.uint16)
    across = functools.reduce(np.add, (values[:, offset::cell] for offset in range(cell)))
    cells = functools.reduce(np.add, (across[offset::cell] for offset in range(cell)))
    thumbnail: Thumbnail = cells.astype(np.float32) / (cell * cell)
    return thumbnail


def _black_luma(frame: av.VideoFrame, level: float) -> float:
    """`level` (a share of the luma range) in 8-bit levels: full range (JPEG) or video range (16-235)."""
    full = frame.format.name.startswith("yuvj") or frame.color_range == 2  # AVCOL_RANGE_JPEG
    return level * 255 if full else 16 + level * 219


@dataclass
class _Look:
    """A frame summed up: its luma grid's share of black pixels, its luma thumbnail, and its chroma grids
    (thumbnails made of them only when the luma alone cannot tell the frame from the one before: most frames
    of a moving picture need none)."""

    black_share: float
    luma: Thumbnail
    chroma_grids: list[NDArray[np.uint8]]
    chroma_thumbnails: list[Thumbnail] | None = None

    @classmethod
    def of(cls, frame: av.VideoFrame, black_level: float) -> _Look:
        luma, *chroma = (_grid(plane) for plane in _planes(frame))
        black = np.count_nonzero(luma <= _black_luma(frame, black_level)) / luma.size
        return cls(float(black), _thumbnail(luma), chroma)  # (views that keep the frame's memory theirs)

    @property
    def chroma(self) -> list[Thumbnail]:
        if self.chroma_thumbnails is None:
            self.chroma_thumbnails = [_thumbnail(grid) for grid in self.chroma_grids]
        return self.chroma_thumbnails

    def unchanged_from(self, before: _Look, level: float) -> bool:
        """Whether no cell of any plane's thumbnail changed by more than `level` (8-bit levels)."""
        if float(np.abs(self.luma - before.luma).max()) > level:
            return False
        return all(float(np.abs(now - then).max()) <= level for now, then in zip(self.chroma, before.chroma,
                                                                                 strict=True))


def _likeness(a: Thumbnail, b: Thumbnail) -> float:
    """PSNR (dB) of two luma thumbnails of the same size (99 when equal)."""
    error = float(np.mean((a - b) ** 2))
    return 99.0 if error == 0 else 10 * math.log10(255**2 / error)


@dataclass
class _Pictures:
    """What the picture's frames showed: per frame its time, mean luma, whether black, whether unchanged; the
    first and last frames' looks and the change across each join."""

    thresholds: Thresholds
    joins: list[float]
    rate: float = 0.0
    times: list[float] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    black: list[bool] = field(default_factory=list)
    still: list[bool] = field(default_factory=list)
    first: _Look | None = None
    last: _Look | None = None
    size: tuple[int, int] = (0, 0)
    jumps: dict[float, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.times)

    @property
    def frame_seconds(self) -> float:
        return 1 / self.rate if self.rate else 0.0

    @property
    def end(self) -> float | None:
        """Where the picture ends (the last frame's time plus its own length); None before any frame."""
        return self.times[-1] - self.times[0] + self.frame_seconds if self.times else None

    def add(self, frame: av.VideoFrame) -> None:
        look = _Look.of(frame, self.thresholds.black_level)
        at = float(frame.time) if frame.time is not None else self.count * self.frame_seconds
        before = self.last
        if before is None:
            self.first, self.size = look, (frame.width, frame.height)
        self.times.append(at)
        self.means.append(float(look.luma.mean()))
        self.black.append(look.black_share >= self.thresholds.black_share)
        self.still.append(before is not None and look.unchanged_from(before, self.thresholds.frozen_level))
        if before is not None:
            self._note_joins(at, look, before)
        self.last = look

    def _note_joins(self, at: float, look: _Look, before: _Look) -> None:
        """The change across each join this frame is the first after (the mean luma difference of the frames
        either side)."""
        start, half = self.times[0], self.frame_seconds / 2
        for join in self.joins:
            if join not in self.jumps and at - start >= join - half:
                self.jumps[join] = float(np.mean(np.abs(look.luma - before.luma)))


def _stretches(flags: list[bool], times: list[float], end: float) -> Iterator[tuple[float, float]]:
    """(start, end) of each run of flagged frames, a run ending where the next frame starts."""
    start: float | None = None
    for flagged, at in zip([*flags, False], [*times, end], strict=True):
        if flagged and start is None:
            start = at
        elif not flagged and start is not None:
            yield start, at
            start = None


def _picture_findings(pictures: _Pictures, thresholds: Thresholds) -> list[Finding]:
    origin, end = pictures.times[0], pictures.times[-1] + pictures.frame_seconds
    times = [at - origin for at in pictures.times]
    found = [_finding("black", "fail", f"black from {a:.1f} s to {b:.1f} s", a, b - a)
             for a, b in _stretches(pictures.black, times, end - origin) if b - a >= thresholds.black_seconds]
    # A frozen stretch starts with the frame the unchanged ones repeat; black frames are black, not frozen too.
    still = [s and not b for s, b in zip(pictures.still, pictures.black, strict=True)]
    held = [any(still[i:i + 2]) for i in range(len(still))]
    found += [_finding("frozen", "fail", f"frozen from {a:.1f} s to {b:.1f} s", a, b - a)
              for a, b in _stretches(held, times, end - origin) if b - a >= thresholds.frozen_seconds]
    found += _flashes(pictures.means, times, pictures.rate, thresholds.flash_jump)
    return found


def _flashes(means: list[float], times: list[float], rate: float, jump: float) -> list[Finding]:
    """Each run of at most FLASH_SECONDS of frames whose mean luma all sit `jump` above (or below) the frame
    before the run, the frame after it back within half of `jump` of that one."""
    longest = max(1, round(FLASH_SECONDS * rate)) if rate else 1
    found: list[Finding] = []
    index = 1
    while index < len(means) - 1:
        length = _flash_length(means, index, longest, jump)
        if length:
            seconds = times[index + length] - times[index]
            found.append(_finding("flash", "fail", f"a flash at {times[index]:.1f} s ({length} frames)",
                                  times[index], seconds))
        index += length or 1
    return found


def _flash_length(means: list[float], index: int, longest: int, jump: float) -> int:
    """How many frames from `index` on make a flash (0: none)."""
    before = means[index - 1]
    sign = 1.0 if means[index] > before else -1.0
    for length in range(1, longest + 1):
        if index + length >= len(means) or sign * (means[index + length - 1] - before) < jump:
            return 0
        if abs(means[index + length] - before) < jump / 2:
            return length
    return 0


# The sound ---------------------------------------------------------------------------------------------------------

# ITU-R BS.1770-4, table 1 and 2: the K-weighting's pre-filter (a high shelf) and RLB high-pass, at 48 kHz.
_SHELF = ((1.53512485958697, -2.69169618940638, 1.19839281085285), (1.0, -1.69065929318241, 0.73248077421585))
_HIGH_PASS = ((1.0, -2.0, 1.0), (1.0, -1.99004745483398, 0.99007225036621))


@functools.cache
def _k_weights(samples: int, rate: int) -> NDArray[np.float64]:
    """Per rfft bin of `samples` at `rate`: the K filter's power response, times the bin's share of the mean
    square (Parseval: the bins between DC and Nyquist count twice), so that a block's weighted power sums to
    its K-weighted mean square."""
    hertz = np.fft.rfftfreq(samples, 1 / rate)
    z = np.exp(-1j * 2 * np.pi * np.minimum(hertz, 24_000) / 48_000)
    power = np.ones_like(hertz)
    for b, a in (_SHELF, _HIGH_PASS):
        power *= np.abs((b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)) ** 2
    share = np.full_like(hertz, 2.0)
    share[0] = 1.0
    if samples % 2 == 0:
        share[-1] = 1.0
    weights: NDArray[np.float64] = power * share / samples**2
    return weights


@dataclass
class _Sound:
    """What the sound showed, a tenth of a second at a time: its K-weighted power (summed over channels), its
    peak in each 10 ms, and how many samples were at full scale."""

    present: bool = False
    rate: int = 0
    start: float | None = None
    pending: list[NDArray[np.float32]] = field(default_factory=list)
    waiting: int = 0  # samples pending
    powers: list[float] = field(default_factory=list)
    peaks: list[NDArray[np.float32]] = field(default_factory=list)
    clipped: int = 0
    samples: int = 0
    resampler: av.AudioResampler = field(default_factory=lambda: av.AudioResampler(format="fltp"))

    @property
    def block(self) -> int:
        return max(_WINDOWS, self.rate // 10)

    def add(self, frame: av.AudioFrame) -> None:
        if self.start is None:
            self.rate = frame.sample_rate
            self.start = float(frame.time) if frame.time is not None else 0.0
        plain = [frame] if frame.format.name == "fltp" else self.resampler.resample(frame)
        for chunk in plain:
            self.pending.append(chunk.to_ndarray().astype(np.float32, copy=False))
            self.waiting += chunk.samples
        if self.waiting >= self.block * _BATCH:
            self._measure(whole_blocks=True)

    def _measure(self, whole_blocks: bool) -> None:
        """The pending sound's whole blocks measured at once (and, at the end, what is left as a short one)."""
        if not self.pending:
            return
        waiting = np.concatenate(self.pending, axis=1) if len(self.pending) > 1 else self.pending[0]
        size = self.block
        usable = waiting.shape[1] // size * size
        if usable:
            self._blocks(waiting[:, :usable].reshape(waiting.shape[0], -1, size))
        if not whole_blocks and usable < waiting.shape[1]:
            self._blocks(waiting[:, None, usable:])
            usable = waiting.shape[1]
        self.pending, self.waiting = [waiting[:, usable:]], waiting.shape[1] - usable

    def _blocks(self, blocks: NDArray[np.float32]) -> None:
        """Blocks (channels, blocks, samples) measured: full-scale samples, the peak of each 10 ms, and the
        K-weighted power of each block of whole length (a last, short one only counts as peaks)."""
        magnitude = np.abs(blocks)
        self.clipped += int(np.count_nonzero(magnitude >= FULL_SCALE))
        self.samples += magnitude.size
        loudest = magnitude.max(axis=0)  # (blocks, samples)
        window = max(1, self.block // _WINDOWS)
        whole = loudest.shape[1] // window * window
        self.peaks.append(loudest[:, :whole].reshape(-1, window).max(axis=1) if whole else loudest.max(axis=1))
        if blocks.shape[2] == self.block:
            spectrum = np.fft.rfft(blocks, axis=2)
            power = (spectrum.real**2 + spectrum.imag**2) @ _k_weights(blocks.shape[2], self.rate)
            self.powers += power.sum(axis=0).tolist()

    def finish(self) -> None:
        self._measure(whole_blocks=False)

    def integrated_lufs(self) -> float:
        """BS.1770-4's gated loudness of the 100 ms powers (-inf: silence, or shorter than one 400 ms block)."""
        powers = np.array(self.powers)
        if powers.size < 4:
            return float("-inf")
        blocks = np.convolve(powers, np.ones(4) / 4, mode="valid")
        with np.errstate(divide="ignore"):
            loudness = -0.691 + 10 * np.log10(blocks)
        above = blocks[loudness > -70]
        if not above.size:
            return float("-inf")
        relative = -0.691 + 10 * math.log10(float(above.mean())) - 10
        gated = blocks[(loudness > -70) & (loudness > relative)]
        return -0.691 + 10 * math.log10(float(gated.mean()))


def _sound_findings(sound: _Sound, lufs: float, order: _Order, origin: float) -> list[Finding]:
    expect, thresholds = order.expect, order.thresholds
    if not sound.present or sound.start is None:
        return [_finding("silent", "fail", "no sound track")] if expect.sound else []
    found = _silences(sound, thresholds, origin) if expect.sound else []
    if sound.samples and sound.clipped / sound.samples > thresholds.clipping_fraction:
        found.append(_finding("clipping", "warn", f"clipped: {sound.clipped / sound.samples:.2%} of the samples at "
                              "full scale"))
    if math.isfinite(lufs) and not thresholds.loudness_min_lufs <= lufs <= thresholds.loudness_max_lufs:
        found.append(_finding("loudness", "warn", f"loudness {lufs:.1f} LUFS, outside {thresholds.loudness_min_lufs:g}"
                              f" to {thresholds.loudness_max_lufs:g} LUFS"))
    return found


def _silences(sound: _Sound, thresholds: Thresholds, origin: float) -> list[Finding]:
    """Each stretch of at least `silence_seconds` whose 10 ms peaks all stay under `silence_db`: the whole
    track silent fails, a stretch of it warns."""
    peaks = np.concatenate(sound.peaks) if sound.peaks else np.zeros(0, dtype=np.float32)
    quiet = (peaks < 10 ** (thresholds.silence_db / 20)).tolist()
    if not quiet or all(quiet):
        return [_finding("silent", "fail", "the sound track is silent throughout")]
    window = max(1, sound.block // _WINDOWS) / sound.rate
    offset = (sound.start or 0.0) - origin
    times = [offset + index * window for index in range(len(quiet))]
    return [_finding("silent", "warn", f"silent from {a:.1f} s to {b:.1f} s", a, b - a)
            for a, b in _stretches(quiet, times, offset + len(quiet) * window) if b - a >= thresholds.silence_seconds]


# Against the order -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Order:
    """What a take is held to: what was ordered and the thresholds."""

    expect: Expectation
    thresholds: Thresholds


def _checked(pictures: _Pictures, sound: _Sound, order: _Order, stopped: Finding | None = None) -> TakeCheck:
    """The findings of what was decoded (`stopped`: where decoding stopped, first)."""
    if not pictures.count:
        return TakeCheck(findings=[stopped] if stopped else [])
    expect, thresholds = order.expect, order.thresholds
    sound.finish()
    lufs = sound.integrated_lufs()
    findings = [*([stopped] if stopped else []), *_order_findings(pictures, expect, thresholds),
                *_picture_findings(pictures, thresholds),
                *_sound_findings(sound, lufs, order, pictures.times[0]),
                *_image_findings(pictures, expect, thresholds), *_join_findings(pictures, thresholds)]
    return TakeCheck(findings=findings, loudness_lufs=round(lufs, 2) if math.isfinite(lufs) else None)


def _order_findings(pictures: _Pictures, expect: Expectation, thresholds: Thresholds) -> list[Finding]:
    found: list[Finding] = []
    seconds = pictures.end or 0.0
    if expect.seconds is not None and abs(seconds - expect.seconds) > thresholds.duration_tolerance:
        short = seconds < expect.seconds
        found.append(_finding("duration", "fail" if short else "warn",
                              f"{seconds:.1f} s long, {expect.seconds:g} s ordered"))
    if expect.fps is not None and abs(pictures.rate - expect.fps) > thresholds.frame_rate_tolerance:
        found.append(_finding("frame_rate", "warn", f"{pictures.rate:g} frames a second, {expect.fps:g} ordered"))
    if expect.size is not None and tuple(expect.size) != pictures.size:
        found.append(_finding("size", "fail", f"{pictures.size[0]}x{pictures.size[1]}, "
                              f"{expect.size[0]}x{expect.size[1]} ordered"))
    return found


def _image_findings(pictures: _Pictures, expect: Expectation, thresholds: Thresholds) -> list[Finding]:
    asked: list[tuple[Check, bytes | None, _Look | None, str]] = [
        ("reference", expect.reference, pictures.first, "first"), ("last_image", expect.last_image, pictures.last,
                                                                  "last")]
    found: list[Finding] = []
    for check, image, look, which in asked:
        if image is None or look is None:
            continue
        likeness = _likeness(look.luma, _image_luma(image, pictures.size))
        if likeness < thresholds.reference_psnr_db:
            found.append(_finding(check, "fail", f"the {which} frame is not the image asked for (PSNR "
                                  f"{likeness:.1f} dB, under {thresholds.reference_psnr_db:g})"))
    return found


def _image_luma(data: bytes, size: tuple[int, int]) -> Thumbnail:
    """An image's luma thumbnail as the take's frames are summed up: fitted to the frame size, its grid's pixels
    converted to 8-bit video-range luma as an encoder takes RGB (BT.601, FFmpeg's swscale: within a level)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    fitted = image if image.size == size else ImageOps.fit(image, size)
    rgb = _grid(np.asarray(fitted)).astype(np.uint32)
    luma = ((66 * rgb[..., 0] + 129 * rgb[..., 1] + 25 * rgb[..., 2] + 128) >> 8) + 16
    return _thumbnail(luma.astype(np.uint8))


def _join_findings(pictures: _Pictures, thresholds: Thresholds) -> list[Finding]:
    return [_finding("join", "warn", f"a jump at the join at {join:g} s (mean luma change {jump:.0f})", join)
            for join, jump in sorted(pictures.jumps.items()) if jump > thresholds.join_jump]
