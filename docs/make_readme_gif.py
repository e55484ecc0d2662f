"""Make a GIF that `evaluate.py --gif` wrote fit for a page: every `--every`-th frame of its first
`--frames` kept, each pixel blown up `--scale` times without smoothing (so the car stays a car), one
shared palette of `--colors` colours (so the file stays small).

    python docs/make_readme_gif.py results/.../best_agent.gif docs/laptop_vae_agent.gif --every 6 --scale 3

(docs/laptop_vae_agent.gif: `--every 2 --scale 3` of the earlier README GIF, itself every third frame of
an episode at 64x64: every sixth step of the first 480; docs/laptop_vaegan_agent.gif the same with
`--colors 24`, which keeps it under 2 MB.)
"""

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

from common.files import atomic_path  # noqa: E402


def readme_frames(frames, every, count, scale, colors):
    """Every `every`-th of the first `count` * `every` RGB frames, scaled by nearest neighbour, mapped to
    one palette of `colors` colours taken from the middle frame (no dithering: flat colours compress)."""
    kept = [frame.resize((frame.width * scale, frame.height * scale), Image.Resampling.NEAREST)
            for frame in frames[:count * every:every]]
    palette = kept[len(kept) // 2].quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    return [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in kept]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--every", type=int, default=6)
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--colors", type=int, default=48)
    args = parser.parse_args()
    with Image.open(args.source) as gif:
        duration = gif.info.get("duration", 50)
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
    kept = readme_frames(frames, args.every, args.frames, args.scale, args.colors)
    with atomic_path(args.target) as temporary:
        kept[0].save(temporary, format="GIF", save_all=True, append_images=kept[1:], duration=duration * args.every,
                     loop=0)
    print(f"wrote {args.target}: {len(kept)} frames of {kept[0].width}x{kept[0].height}, "
          f"{args.target.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
