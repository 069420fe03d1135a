"""Render one frame of a wave-interference pattern to a PNG file.

A few point sources sit on a circle and send out circular waves; where the waves meet they add up
or cancel out. ``--frame`` advances the waves' phase and turns the sources a little, so a range of
frames is an animation. The same arguments always write the same bytes: no randomness, no clock
and no metadata that changes between runs.

Used by the tutorial notebook ``05-render-experiment.ipynb``; needs numpy and Pillow::

    python render_frame.py --sources 3 --wavelength 16 --frame 1 --output frame1.png
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

FloatImage = npt.NDArray[np.float64]

FRAMES_PER_CYCLE = 12
"""Frames for the waves to travel one wavelength."""


def interference(
    width: int, height: int, *, sources: int, wavelength: float, frame: int
) -> FloatImage:
    """Sum of the sources' waves at every pixel, scaled to 0..1."""
    phase = 2 * math.pi * frame / FRAMES_PER_CYCLE
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    radius = 0.3 * min(width, height)
    total = np.zeros((height, width), dtype=np.float64)
    for index in range(sources):
        angle = 2 * math.pi * index / sources + phase / sources
        x = width / 2 + radius * math.cos(angle)
        y = height / 2 + radius * math.sin(angle)
        distance = np.hypot(xs - x, ys - y)
        total += np.cos(2 * math.pi * distance / wavelength - phase)
    return (total / sources + 1) / 2


def colourise(values: FloatImage) -> npt.NDArray[np.uint8]:
    """A cosine palette (blues, creams and oranges) as 8-bit RGB."""
    offsets = np.array([0.0, 0.15, 0.3])
    channels = 0.5 + 0.5 * np.cos(2 * math.pi * (0.8 * values[..., np.newaxis] + offsets + 0.5))
    rgb: npt.NDArray[np.uint8] = np.round(channels * 255).astype(np.uint8)
    return rgb


def render(width: int, height: int, *, sources: int, wavelength: float, frame: int) -> Image.Image:
    values = interference(width, height, sources=sources, wavelength=wavelength, frame=frame)
    return Image.fromarray(colourise(values))  # height x width x 3 bytes: RGB


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=2, help="number of wave sources")
    parser.add_argument("--wavelength", type=float, default=16.0, help="in pixels")
    parser.add_argument("--frame", type=int, default=1)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--output", type=Path, required=True, help="PNG file to write")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.sources < 1 or args.wavelength <= 0 or args.width < 1 or args.height < 1:
        print("openjd_fail: --sources, --wavelength, --width and --height must be positive")
        return 2
    started = time.perf_counter()
    image = render(
        args.width, args.height, sources=args.sources, wavelength=args.wavelength, frame=args.frame
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.output, format="PNG")
    elapsed = time.perf_counter() - started
    print(f"rendered {args.width}x{args.height} in {elapsed:.3f} s: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
