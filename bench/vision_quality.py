"""VAE against VAE/GAN on the same rollouts and epochs: held-out MSE, SSIM and sharpness, side by side.

    python bench/vision_quality.py [--num_episodes 40] [--max_frames 500] [--vae_num_epoch 10] [--key value ...]

Collects the rollouts (extract.py), trains both vision models with the same data, held-out split,
batch size and epochs (vae_train.py, vaegan_train.py), evaluates both on the same held-out frames
(evaluate_vision.py) and prints the ratios against the targets: sharpness(VAE/GAN) / sharpness(VAE)
>= 1.5 and MSE(VAE/GAN) / MSE(VAE) <= 1.5. Any config key may be given; outputs stay under
results_dir (default results/bench), so a rerun reuses the rollouts and finished models, and the
figures can be looked at: <vision>/figures/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

from config import parse_config
from evaluate_vision import format_table
from extract import extract
from timing import publish
from vision import evaluate_vision, train_vision

SMOKE_CONFIG = Path(__file__).resolve().parents[1] / "WorldModels" / "configs" / "smoke.config"
DEFAULTS = ["--exp_name", "vision_quality", "--results_dir", "results/bench", "--num_episodes", "40",
            "--max_frames", "500", "--min_frames", "100", "--vae_batch_size", "100", "--vae_num_epoch", "10",
            "--validation_frames", "1000", "--holdout_fraction", "0.1"]


def main():
    config = parse_config(["-c", str(SMOKE_CONFIG), *DEFAULTS, *sys.argv[1:]], description=__doc__.split("\n\n")[0])
    extract(config)
    for vision in ("vae", "vaegan"):
        train_vision(config, vision)
    results = evaluate_vision(config)
    vae, vaegan = results["vae"], results["vaegan"]
    print(f"\n{config.num_episodes} episodes of up to {config.max_frames} frames, {config.vae_num_epoch} epochs each\n")
    print(format_table(results))
    print(f"\nsharpness VAE/GAN / VAE: {vaegan['sharpness'] / vae['sharpness']:.2f}  (target >= 1.5)")
    print(f"MSE       VAE/GAN / VAE: {vaegan['mse'] / vae['mse']:.2f}  (target <= 1.5)")
    publish("vision_quality", [("sharpness VAE/GAN / VAE", vaegan["sharpness"] / vae["sharpness"], ">= 1.5"),
                               ("held-out MSE VAE/GAN / VAE", vaegan["mse"] / vae["mse"], "<= 1.5")])


if __name__ == "__main__":
    main()
