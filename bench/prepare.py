"""Image preparation: one 24-megapixel JPEG to 1280x720 cover, then a batch of 200 mixed images.

Anchor: the naive Pillow recipe (open -> ImageOps.fit(..., LANCZOS) -> save quality 95), same process.
Goals: at least 5x faster with the same output size and PSNR >= 38 dB against the anchor's output (the line
after it says how fast entropy decoding alone is, a floor no recipe on one core passes);
the batch uses every core (images per second against the same work done one by one); and as a whole
command, `reelflow prepare` of 24 large photos at least 3x the naive recipe's loop run as a script (both
include the interpreter's start-up and imports; reelflow's includes its Prefect run, recorded in the local
Prefect server, started beforehand).
Run: .venv/bin/python -m bench.prepare
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from bench._support import timed_command
from reelflow.image_batch import PrepareJob, prepare_one
from reelflow.media.images import prepare

TARGET = (1280, 720)
ROUNDS = 5
GOAL_RATIO = 5


def photo_like(size: tuple[int, int], seed: int) -> Image.Image:
    """Smooth shapes plus sensor-like noise: compresses and decodes like a photograph."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 255 // (w + h))], axis=-1).astype(np.float32)
    noisy = base + rng.normal(0, 12, size=base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def naive(data: bytes) -> bytes:
    fitted = ImageOps.fit(Image.open(io.BytesIO(data)), TARGET, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    fitted.save(out, "JPEG", quality=95)
    return out.getvalue()


def ours(data: bytes) -> bytes:
    return prepare(data, TARGET, fit="cover", output="JPEG").data


def timed(function: Callable[[bytes], object], data: bytes) -> float:
    started = time.perf_counter()
    function(data)
    return time.perf_counter() - started


def psnr(a: bytes, b: bytes) -> float:
    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.float64)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.float64)
    return float(10 * np.log10(255**2 / np.mean((x - y) ** 2)))


def entropy_floor(data: bytes) -> None:
    """Decoding alone at the decoder's smallest scale (1/8): every coefficient is still entropy-decoded, one
    after another, whatever the scale, so no recipe on one core is faster than this."""
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (image.width // 8, image.height // 8))
    image.load()


def single() -> bool:
    data = encode(photo_like((6000, 4000), 1))
    anchor_s, ours_s, floor_s = [], [], []
    for _ in range(ROUNDS):  # interleaved, so machine noise hits both alike
        anchor_s.append(timed(naive, data))
        ours_s.append(timed(ours, data))
        floor_s.append(timed(entropy_floor, data))
    anchor, reelflow, floor = (statistics.median(s) for s in (anchor_s, ours_s, floor_s))
    ratio = anchor / reelflow
    quality = psnr(naive(data), ours(data))
    size_ok = Image.open(io.BytesIO(ours(data))).size == TARGET
    ok = ratio >= GOAL_RATIO and quality >= 38 and size_ok
    print(f"24 MP JPEG -> 1280x720 cover: naive {anchor * 1000:.0f} ms, reelflow {reelflow * 1000:.0f} ms: "
          f"{ratio:.1f}x faster (goal >= {GOAL_RATIO:g}x), PSNR {quality:.1f} dB vs naive (goal >= 38), size "
          f"{'ok' if size_ok else 'WRONG'}: {'PASS' if ok else 'FAIL'}")
    print(f"    entropy decoding alone, at 1/8 scale: {floor * 1000:.0f} ms, so {anchor / floor:.1f}x at the very most")
    return ok


def batch() -> bool:
    sizes = [(4000, 3000), (1920, 1080), (1080, 1920), (3000, 3000), (800, 600), (6000, 4000), (640, 480)]
    formats = ["JPEG", "JPEG", "PNG", "JPEG", "WEBP"]
    with tempfile.TemporaryDirectory() as folder:
        jobs = []
        for index in range(200):
            fmt = formats[index % len(formats)]
            path = Path(folder) / f"img{index:03d}.{fmt.lower()}"
            path.write_bytes(encode(photo_like(sizes[index % len(sizes)], index), fmt))
            jobs.append(PrepareJob(str(path), f"img{index:03d}.jpg", TARGET, "cover", "#000000", "JPEG",
                                   f"file://{folder}/out"))
        started = time.perf_counter()
        for job in jobs[:40]:
            prepare_one(job)
        one_by_one = 40 / (time.perf_counter() - started)
        started = time.perf_counter()
        with ProcessPoolExecutor(os.cpu_count()) as pool:
            results = list(pool.map(prepare_one, jobs, chunksize=4))
        all_cores = len(jobs) / (time.perf_counter() - started)
    ok = all(r.error is None for r in results) and all_cores > one_by_one
    print(f"batch of 200 mixed images: {all_cores:.1f} images/s on {os.cpu_count()} cores, "
          f"{one_by_one:.1f} images/s one by one ({all_cores / one_by_one:.2f}x): {'PASS' if ok else 'FAIL'}")
    return ok


NAIVE_LOOP = """
import io, sys
from pathlib import Path
from PIL import Image, ImageOps
for source in sorted(Path(sys.argv[1]).glob("*.jpg")):
    ImageOps.fit(Image.open(source), (1280, 720), Image.Resampling.LANCZOS).save(Path(sys.argv[2]) / source.name,
                                                                               "JPEG", quality=95)
"""


def whole_command() -> bool:
    with tempfile.TemporaryDirectory() as folder:
        photos, naive_out = Path(folder) / "photos", Path(folder) / "naive"
        photos.mkdir()
        naive_out.mkdir()
        for index in range(24):
            (photos / f"photo{index:02d}.jpg").write_bytes(encode(photo_like((6000, 4000), index)))
        prepare_command = [sys.executable, "-m", "reelflow.cli", "prepare", str(photos), "--size", "1280x720",
                           "--out", f"file://{folder}/ours"]
        subprocess.run(prepare_command, check=True, capture_output=True)  # starts the Prefect server if need be
        environment = dict(os.environ)
        anchor = timed_command([sys.executable, "-c", NAIVE_LOOP, str(photos), str(naive_out)], environment).seconds
        ours_seconds = timed_command(prepare_command, environment).seconds
    ratio = anchor / ours_seconds
    ok = ratio >= 3
    print(f"24 photos of 24 MP, whole command: naive loop {anchor:.1f} s, reelflow prepare {ours_seconds:.1f} s: "
          f"{ratio:.1f}x faster (goal >= 3x): {'PASS' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if all([single(), batch(), whole_command()]) else 1)
