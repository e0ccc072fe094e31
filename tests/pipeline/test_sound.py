"""Sound, measured as a player would hear it: every video and the reel keep their audio through continuations,
stitching and assembly; the sandbox's per-second pulses stay on the video's per-second frames after any join
(no drift over a minute); joins do not click; the reel is at its loudness target; silent scenes join too."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from av.container import InputContainer, OutputContainer

from flows.render_plan import render_plan
from reelflow import parse_plan
from reelflow.media.reel import JoinOptions, Music, join_clips
from reelflow.media.sound import LoudnessTarget, measure
from reelflow.sandbox import FPS, Recipe, RunningSandbox, Segment, render, run_sandbox
from tests.media import Sound, bar_times, probe_video, pulse_times, sound_of
from tests.pipeline.test_openrouter import use_openrouter

FRAME = 1 / FPS
SYNC_SECONDS = 0.020


STITCHED = {"size": "1280x720", "model": "kwaivgi/kling-v3.0-std"}


@pytest.fixture
def openrouter(monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[RunningSandbox]:
    """A provider whose models make sound, and a model of it that does not continue its videos (Kling 3.0 std on
    OpenRouter: `STITCHED`): chains are stitched here."""
    with run_sandbox(profile="openrouter", job_seconds=0.2) as pose:
        use_openrouter(monkeypatch, pose)
        yield pose


def heard(data: bytes) -> Sound:
    sound = sound_of(data)
    assert sound is not None, "no sound track"
    return sound


def in_sync(data: bytes) -> list[float]:
    """How far each second's pulse is from that second's marked frame, the nearest one (seconds)."""
    bars, pulses = bar_times(data), pulse_times(heard(data))
    assert bars and pulses and len(pulses) <= len(bars), (bars, pulses)
    return [min(abs(p - b) for b in bars) for p in pulses]


def jumps_at(sound: Sound, times: list[float], around: float = 0.01) -> float:
    """The largest step between two samples within `around` of each time (a click is a large step)."""
    steps = [np.abs(np.diff(sound.samples[0, max(0, round((t - around) * sound.rate)):
                                         round((t + around) * sound.rate)])).max() for t in times]
    return float(max(steps))


def test_the_sandbox_makes_sound_unless_the_model_is_silent_or_it_was_switched_off(sandbox: RunningSandbox) -> None:
    clip = render(Recipe(size=(640, 360), segments=[Segment(seconds=4, seed="harbour")]), lambda key: b"").video
    with av.open(io.BytesIO(clip)) as container:
        audio = container.streams.audio[0].codec_context
        assert (audio.name, audio.sample_rate, audio.layout.name) == ("aac", 48000, "stereo")
        assert float(container.streams.video[0].average_rate or 0) == FPS
    assert max(in_sync(clip)) < 0.005 and len(pulse_times(heard(clip))) == 3
    silent = render(Recipe(size=(640, 360), segments=[Segment(seconds=4, seed="x")], audio=False), lambda k: b"")
    assert sound_of(silent.video) is None


def test_an_extension_carries_its_sources_sound_then_its_own(sandbox: RunningSandbox) -> None:
    recipe = Recipe(size=(640, 360), segments=[Segment(seconds=4, seed="day"), Segment(seconds=4, seed="night")])
    data = render(recipe, lambda key: b"").video
    sound = heard(data)
    assert abs(sound.seconds - 8) < FRAME
    assert [round(t) for t in pulse_times(sound)] == [1, 2, 3, 4, 5, 6, 7]  # on through the join
    assert max(in_sync(data)) < 0.005


def test_a_three_clip_stitch_keeps_sound_in_sync_and_does_not_click(openrouter: RunningSandbox,
                                                                   tmp_path: Path) -> None:
    plan = parse_plan({"name": "chain", "defaults": STITCHED, "scenes": [
        {"id": "long", "prompt": "a ferry", "seconds": 8,
         "extensions": [{"prompt": "it turns", "seconds": 8}, {"prompt": "it docks", "seconds": 4}]}]})
    result = render_plan(plan, output=f"file://{tmp_path}")
    data = (tmp_path / "chain" / "long" / "video.mp4").read_bytes()
    video, sound = probe_video(data), heard(data)
    assert video.frames == 20 * FPS - 2  # two joins, each without its repeated frame
    assert abs(sound.seconds - video.frames * FRAME) < FRAME
    assert max(in_sync(data)) < SYNC_SECONDS
    joins = [(8 * FPS - 1) * FRAME, (16 * FPS - 2) * FRAME]
    assert jumps_at(sound, joins) < 0.03  # a cut between two tones steps up to 0.2; a pulse 0.13
    record = result.scenes[0].files["video.mp4"]
    assert record.audio is True and record.seconds == pytest.approx(video.frames * FRAME, abs=FRAME)
    assert record.loudness_lufs is not None and -40 < record.loudness_lufs < -5


def test_a_minute_long_chain_does_not_drift(openrouter: RunningSandbox, tmp_path: Path) -> None:
    plan = parse_plan({"name": "minute", "defaults": STITCHED, "scenes": [
        {"id": "long", "prompt": "a long crossing", "seconds": 8,
         "extensions": [{"prompt": f"beat {n}", "seconds": 8} for n in range(6)] + [{"prompt": "end", "seconds": 4}]}]})
    render_plan(plan, output=f"file://{tmp_path}")
    data = (tmp_path / "minute" / "long" / "video.mp4").read_bytes()
    offsets = in_sync(data)
    assert len(offsets) == 7 * 7 + 3 and max(offsets) < SYNC_SECONDS  # each clip marks its own seconds but 0
    assert abs(offsets[-1] - offsets[0]) < 0.005  # the last second is as close as the first: nothing accumulates


def test_the_reel_keeps_sound_is_at_its_loudness_and_silent_scenes_join(monkeypatch: pytest.MonkeyPatch,
                                                                        prefect_harness: None, tmp_path: Path) -> None:
    own = tmp_path / "providers.yaml"
    own.write_text("name: mixed\nextends: openrouter\nmodels:\n  google/veo-3.1-fast:\n    seconds: [4, 6, 8]\n"
                   "    sizes: [1280x720]\n    price_per_second: {1280x720: 0.1}\n  runway/gen-4.5:\n    audio: false\n"
                   "    seconds: [4]\n    sizes: [1280x720]\n    price_per_second: {1280x720: 0.12}\n")
    plan = parse_plan({"name": "reel", "assemble": True, "defaults": {"size": "1280x720", "seconds": 4},
                       "scenes": [{"id": "loud", "prompt": "a harbour"},
                                  {"id": "quiet", "prompt": "a still", "model": "runway/gen-4.5"},
                                  {"id": "after", "prompt": "the sea", "seconds": 8}]})
    with run_sandbox(profile="mixed", providers_file=own, job_seconds=0.2) as pose:
        use_openrouter(monkeypatch, pose, provider="mixed", providers_file=str(own))
        result = render_plan(plan, output=f"file://{tmp_path}/out")
    assert [s.files["video.mp4"].audio for s in result.scenes] == [True, False, True]
    assert result.reel is not None and result.reel.audio is True
    data = (tmp_path / "out" / "reel" / "reel.mp4").read_bytes()
    sound, video = heard(data), probe_video(data)
    assert abs(sound.seconds - video.frames * FRAME) < FRAME and video.frames == 16 * FPS
    quiet = sound.samples[:, round(4.1 * sound.rate):round(7.9 * sound.rate)]
    assert float(np.abs(quiet).max()) < 1e-3  # silence where the silent scene is, sound on both sides
    assert float(np.abs(sound.samples[:, round(8.5 * sound.rate):round(9.5 * sound.rate)]).max()) > 0.05
    loudness = measure([sound.samples])
    assert abs(loudness.integrated_lufs - -14) <= 1 and loudness.true_peak_dbtp <= -1
    assert max(in_sync(data)) < SYNC_SECONDS
    assert jumps_at(sound, [4.0, 8.0]) < 0.03  # the cuts fade, they do not click


def clips(*seeds: str, audio: bool = True, seconds: int = 4) -> list[bytes]:
    return [render(Recipe(size=(640, 360), segments=[Segment(seconds=seconds, seed=s)], audio=audio),
                   lambda key: b"").video for s in seeds]


def test_matching_clips_still_join_by_packet_copy(tmp_path: Path) -> None:
    joined = join_clips([io.BytesIO(c) for c in clips("a", "b", "c")], tmp_path / "reel.mp4",
                        JoinOptions(loudness=LoudnessTarget()))
    assert (joined.picture, joined.sound) == ("stream copy", True)
    assert probe_video((tmp_path / "reel.mp4").read_bytes()).frames == 12 * FPS


def resampled(clip: bytes, rate: int, layout: str) -> io.BytesIO:
    """The clip with its sound at another rate and layout (its picture copied as it is)."""
    other = io.BytesIO()
    picture_in: InputContainer = av.open(io.BytesIO(clip), "r")
    sound_in: InputContainer = av.open(io.BytesIO(clip), "r")
    out: OutputContainer = av.open(other, "w", format="mp4")
    with picture_in, sound_in, out:
        picture = out.add_stream_from_template(picture_in.streams.video[0])
        voice = out.add_stream("aac", rate=rate, layout=layout)
        for packet in picture_in.demux(picture_in.streams.video[0]):
            if packet.dts is not None:
                packet.stream = picture
                out.mux(packet)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        for frame in sound_in.decode(sound_in.streams.audio[0]):
            for piece in resampler.resample(frame):
                out.mux(voice.encode(piece))
        out.mux(voice.encode(None))
    return other


def test_clips_of_other_sample_rates_and_silent_clips_join(tmp_path: Path) -> None:
    sources = [resampled(clips("low")[0], 44100, "mono"), *map(io.BytesIO, clips("quiet", audio=False))]
    joined = join_clips(sources, tmp_path / "j.mp4")
    sound = heard((tmp_path / "j.mp4").read_bytes())
    assert joined.sound and sound.rate == 48000 and abs(sound.seconds - 8) < FRAME
    assert float(np.abs(sound.samples[:, 48000:3 * 48000]).max()) > 0.05  # the resampled clip is heard
    assert float(np.abs(sound.samples[:, round(4.2 * 48000):7 * 48000]).max()) < 1e-3  # then silence


def test_a_music_bed_is_ducked_under_scenes_with_sound(tmp_path: Path) -> None:
    music = io.BytesIO()
    with av.open(music, "w", format="mp4") as out:
        voice = out.add_stream("aac", rate=48000, layout="stereo")
        t = np.arange(3 * 48000) / 48000
        bed = np.stack([0.5 * np.sin(2 * np.pi * 100 * t)] * 2).astype(np.float32)
        for start in range(0, bed.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(bed[:, start:start + 1024]), format="fltp",
                                               layout="stereo")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(voice.encode(frame))
        out.mux(voice.encode(None))
    sources = [io.BytesIO(clips("quiet", audio=False)[0]), io.BytesIO(clips("loud")[0])]
    join_clips(sources, tmp_path / "j.mp4", JoinOptions(music=Music(music, level_db=-12, duck_db=-12)))
    sound = heard((tmp_path / "j.mp4").read_bytes())

    def hum(start: float, end: float) -> float:
        """The level of the music's 100 Hz in a stretch of the mix (its scene's own tone aside)."""
        window = sound.samples[0, round(start * 48000):round(end * 48000)]
        t = np.arange(window.size) / 48000
        return float(2 * abs(np.mean(window * np.exp(-2j * np.pi * 100 * t))))

    assert hum(1.0, 3.5) == pytest.approx(0.5 * 10 ** (-12 / 20), rel=0.1)  # the music, at its level
    assert hum(5.0, 7.5) == pytest.approx(0.5 * 10 ** (-24 / 20), rel=0.1)  # 12 dB lower under the scene's sound


def test_a_music_bed_without_sound_is_refused_before_any_call(tmp_path: Path) -> None:
    from reelflow import PlanError, load_plan, load_profile, validate_plan
    from tests.conftest import image_bytes

    (tmp_path / "music").mkdir()
    (tmp_path / "music" / "cover.png").write_bytes(image_bytes((64, 64)))
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: p\nassemble: true\nmusic: {file: music/cover.png}\nscenes:\n  - {id: a, prompt: x}\n")
    with pytest.raises(PlanError) as refused:
        validate_plan(load_plan(str(plan)), load_profile("sandbox"), source=str(plan))
    assert refused.value.problems == [f"{plan}: music: file: {tmp_path}/music/cover.png has no sound"]
