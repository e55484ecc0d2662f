"""Is the paper's VAE/GAN stable on CarRacing frames? Variants of its settings, trained side by side.

    python bench/vaegan_stability.py [--epochs 3] [--width 0.25] [--variants paper non_saturating ...]

Trains the VAE/GAN with the authors' discriminator (at --width of its size: 1.0 costs ~30 frames/s
on a 2-core CPU) on the rollouts of bench/exploration_quality.py's `original` policy (run that
first; 24 episodes of 300 steps), once per variant, each in its own folder under
results/bench/vaegan_stability/, and prints held-out MSE, SSIM, sharpness and the two collapse
measures of vision_metrics: the diversity of the reconstructions (pixel variance across them over
the frames' own; a collapsed decoder draws one picture, ~0) and of decoded prior samples. A rerun
reuses finished variants.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import argparse
import time

from config import parse_config
from timing import machine_description
from vision import train_vision

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIG = ROOT / "WorldModels" / "configs" / "carracing.config"
ROLLOUTS = ROOT / "results" / "bench" / "exploration" / "explore_original" / "CarRacing-v3" / "record"
# name: config overrides on top of the paper's VAE/GAN settings (configs/carracing.config)
VARIANTS = {
    "paper": [],
    "non_saturating": ["--vaegan_generator_loss", "non_saturating"],
    "gamma_1e-3": ["--vaegan_gamma", "0.001"],
    "gamma_1e-3_non_saturating": ["--vaegan_gamma", "0.001", "--vaegan_generator_loss", "non_saturating"],
    "gamma_1e-3_smoothing": ["--vaegan_gamma", "0.001", "--vaegan_real_label", "0.9"],
    "gamma_1e-2": ["--vaegan_gamma", "0.01"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=float, default=0.25, help="vaegan_discriminator_width")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--results_dir", default=str(ROOT / "results" / "bench" / "vaegan_stability"))
    args = parser.parse_args()
    if not ROLLOUTS.exists():
        sys.exit(f"{ROLLOUTS}: missing; run bench/exploration_quality.py first (its rollouts are reused)")
    print(machine_description())
    rows = []
    for name in args.variants:
        record = Path(args.results_dir) / name / "CarRacing-v3" / "record"
        record.parent.mkdir(parents=True, exist_ok=True)
        if not record.exists():
            record.symlink_to(ROLLOUTS)
        config = parse_config(["-c", str(PAPER_CONFIG), "--results_dir", args.results_dir, "--exp_name", name,
                               "--vae_batch_size", "32", "--validation_frames", "300", "--holdout_fraction", "0.1",
                               "--vae_num_epoch", str(args.epochs), "--vaegan_discriminator_width", str(args.width),
                               *VARIANTS[name]])
        started = time.monotonic()
        metrics = train_vision(config, "vaegan")
        rows.append((name, metrics, (time.monotonic() - started) / 60))
    print(f"\nVAE/GAN, the authors' discriminator at width {args.width}, {args.epochs} epochs, batch 32, "
          "on the original policy's 7,200 frames (held-out frames: 300)")
    print("| variant | MSE | SSIM | sharpness | reconstruction diversity | prior diversity | minutes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, metrics, minutes in rows:
        print(f"| {name} | {metrics['mse']:.5f} | {metrics['ssim']:.3f} | {metrics['sharpness']:.2f} | "
              f"{metrics.get('diversity', float('nan')):.3f} | {metrics.get('prior_diversity', float('nan')):.3f} | "
              f"{minutes:.1f} |")


if __name__ == "__main__":
    main()
