"""Is the paper's VAE/GAN stable on CarRacing frames? Variants of its settings, trained side by side.

    python bench/vaegan_stability.py [--epochs 8] [--width 0.25] [--variants paper vae_decoder ...]

Trains the VAE/GAN with the authors' discriminator and, unless a variant says otherwise, their
decoder (both at --width of their size; 1.0 is a GPU's job) on the rollouts of
bench/exploration_quality.py's `original` policy (run that first; 24 episodes of 300 steps), once
per variant, each in its own folder under
results/bench/vaegan_stability/, and prints held-out MSE, SSIM, sharpness and the two collapse
measures of vision_metrics: the diversity of the reconstructions (pixel variance across them over
the frames' own; a collapsed decoder draws one picture, ~0) and of decoded prior samples; and the
latent spread (std of the encoder's mean over the frames, per dimension: 1 is the prior's width).
The VAE, trained on the same frames for the same epochs, is the first row. A rerun reuses finished
variants (and re-evaluates them).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import argparse
import time

from common.config import parse_config
from stages.vision import evaluate_vision, train_vision
from timing import machine_description

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIG = ROOT / "WorldModels" / "configs" / "carracing.config"
ROLLOUTS = ROOT / "results" / "bench" / "exploration" / "explore_original" / "CarRacing-v3" / "record"
REFERENCE = "vae"  # the VAE, trained on the same frames for the same epochs
# name: config overrides on top of the paper's VAE/GAN settings (configs/carracing.config)
VAE_DECODER = ["--vaegan_decoder", "world_models"]  # the VAE's decoder, no batch normalisation
VARIANTS = {
    "paper": [],
    "paper_non_saturating": ["--vaegan_generator_loss", "non_saturating"],
    "vae_decoder": VAE_DECODER,
    "vae_decoder_non_saturating": [*VAE_DECODER, "--vaegan_generator_loss", "non_saturating"],
    "vae_decoder_gamma_1e-3": [*VAE_DECODER, "--vaegan_gamma", "0.001"],
    "vae_decoder_gamma_1e-3_non_saturating": [*VAE_DECODER, "--vaegan_gamma", "0.001", "--vaegan_generator_loss",
                                              "non_saturating"],
    "vae_decoder_gamma_1e-3_smoothing": [*VAE_DECODER, "--vaegan_gamma", "0.001", "--vaegan_real_label", "0.9"],
    "vae_decoder_gamma_1e-2": [*VAE_DECODER, "--vaegan_gamma", "0.01"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--width", type=float, default=0.25,
                        help="vaegan_discriminator_width and vaegan_decoder_width")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--results_dir", default=str(ROOT / "results" / "bench" / "vaegan_stability"))
    args = parser.parse_args()
    if not ROLLOUTS.exists():
        sys.exit(f"{ROLLOUTS}: missing; run bench/exploration_quality.py first (its rollouts are reused)")
    print(machine_description())
    rows = []
    for name in [REFERENCE, *args.variants]:  # the VAE first: the reference every variant is read against
        record = Path(args.results_dir) / name / "CarRacing-v3" / "record"
        record.parent.mkdir(parents=True, exist_ok=True)
        if not record.exists():
            record.symlink_to(ROLLOUTS)
        config = parse_config(["-c", str(PAPER_CONFIG), "--results_dir", args.results_dir, "--exp_name", name,
                               "--vae_batch_size", "32", "--validation_frames", "300", "--holdout_fraction", "0.1",
                               "--vae_num_epoch", str(args.epochs), "--vaegan_discriminator_width", str(args.width),
                               "--vaegan_decoder_width", str(args.width), *VARIANTS.get(name, [])])
        started = time.monotonic()
        vision = "vae" if name == REFERENCE else "vaegan"
        train_vision(config, vision)
        metrics = evaluate_vision(config, visions=(vision,))[vision]  # today's measures, for finished runs too
        rows.append((name, metrics, (time.monotonic() - started) / 60))
    print(f"\nVAE/GAN, the authors' discriminator at width {args.width}, {args.epochs} epochs, batch 32, "
          "on the original policy's 7,200 frames (held-out frames: 300)")
    print("| variant | MSE | SSIM | sharpness | reconstruction diversity | prior diversity | latent spread | "
          "Dis(real / reconstruction / prior sample) | minutes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")  # the first row is the VAE's
    for name, metrics, minutes in rows:
        scores = (" / ".join(f"{metrics[f'discriminator_{kind}']:.3f}" for kind in ("real", "reconstruction", "prior"))
                  if "discriminator_real" in metrics else "")
        print(f"| {name} | {metrics['mse']:.5f} | {metrics['ssim']:.3f} | {metrics['sharpness']:.2f} | "
              f"{metrics['diversity']:.3f} | {metrics['prior_diversity']:.3f} | {metrics['latent_spread']:.3f} | "
              f"{scores} | {minutes:.1f} |")


if __name__ == "__main__":
    main()
