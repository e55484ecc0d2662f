"""VAE against VAE/GAN as the vision of a world model, on the same rollouts and epochs.

    python bench/vision_quality.py [--num_episodes 40] [--max_frames 300] [--vae_num_epoch 8] [--key value ...]

Collects rollouts with the default exploration policy (extract.py), then trains on the same
frames, held-out split, batch size and epochs: the VAE; the VAE/GAN as the smoke config has it (the
paper's model: configs/carracing.config's vaegan_* keys, with the authors' discriminator and
decoder at a quarter of their width; tests/test_config.py checks the two agree); and this
project's first, hybrid VAE/GAN (strided discriminator, the VAE's decoder, gamma 10, pixel weight
0.1). For each, an MDN-RNN on its latents (series.py, rnn_train.py). All are judged on the same
held-out frames and episodes (evaluate_vision.py): MSE, SSIM, sharpness, the diversity of
reconstructions and of decoded prior samples (~0: collapsed; above 1: noise), the driving probe,
and the MDN-RNN's one-step predictions decoded to pixels against the real next frames (the
measure that compares world models across latent spaces).
Outputs stay under results_dir (default results/bench): a rerun reuses the rollouts and finished
models. Besides each model's own figures (<vision>/figures/), one figure holds held-out frames, the
three models' reconstructions and their prior samples: <exp_name>/vae_vs_vaegan.png.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split

from common.config import for_vision, parse_config
from common.layout import model_path, record_dir
from evaluate_vision import format_table
from stages.memory import encode_series, prediction_pixel_errors, train_memory
from stages.rollouts import extract
from stages.vision import comparison_figure, evaluate_vision, load_vision_model, train_vision
from timing import machine_description, publish

ROOT = Path(__file__).resolve().parents[1]
SMOKE_CONFIG = ROOT / "WorldModels" / "configs" / "smoke.config"
DEFAULTS = ["--exp_name", "vision_quality", "--results_dir", "results/bench", "--num_episodes", "40",
            "--max_frames", "300", "--min_frames", "300", "--vae_batch_size", "32", "--vae_num_epoch", "8",
            "--validation_frames", "1000", "--holdout_fraction", "0.1", "--rnn_size", "128", "--rnn_num_steps",
            "1600", "--rnn_batch_size", "8", "--rnn_max_seq_len", "100", "--rnn_validation_every", "200"]
# The first VAE/GAN of this project: a VAE / feature-matching / GAN hybrid, kept for comparison.
# (The widths do not apply to its networks; fixed, so that another width for the paper's VAE/GAN
# does not make its finished folder refuse the rerun.)
HYBRID = {"vaegan_discriminator": "strided", "vaegan_feature_layer": 3, "vaegan_gamma": 10.0,
          "vaegan_pixel_weight": 0.1, "vaegan_decoder": "world_models", "vaegan_generator_loss": "minimax",
          "vaegan_real_label": 1.0, "vaegan_discriminator_width": 1.0, "vaegan_decoder_width": 1.0}


def hybrid_config(config):
    """The hybrid VAE/GAN's experiment: its own folder, reading the same rollouts (a symlink)."""
    hybrid = type(config)(**{**vars(config), **HYBRID, "exp_name": f"{config.exp_name}_hybrid"})
    record = record_dir(hybrid)
    record.parent.mkdir(parents=True, exist_ok=True)
    if not record.exists():
        record.symlink_to(record_dir(config).resolve())
    return hybrid


def world_model(config, vision):
    """Train vision model and MDN-RNN; return (evaluate_vision's metrics, one-step pixel errors)."""
    config = for_vision(config, vision)
    train_vision(config, vision)
    encode_series(config)
    train_memory(config)
    metrics = evaluate_vision(config, visions=(vision,))[vision]
    return metrics, prediction_pixel_errors(config, load_vision_model(model_path(config, vision)))


def main():
    config = parse_config(["-c", str(SMOKE_CONFIG), *DEFAULTS, *sys.argv[1:]], description=__doc__.split("\n\n")[0])
    print(machine_description())
    extract(config)
    results = {"vae": world_model(config, "vae"), "vaegan": world_model(config, "vaegan"),
               "hybrid": world_model(hybrid_config(config), "vaegan")}

    print(f"\n{config.num_episodes} episodes of {config.max_frames} frames (policy {config.extract_policy}), "
          f"{config.vae_num_epoch} epochs of batches of {config.vae_batch_size} for every vision model; the VAE/GAN's "
          f"networks at widths {config.vaegan_discriminator_width} (discriminator) and {config.vaegan_decoder_width} "
          f"(decoder); MDN-RNN {config.rnn_num_steps} steps on each\n")
    print(format_table({name: metrics for name, (metrics, _) in results.items()}))
    print("\nMDN-RNN one-step predictions decoded, pixel MSE on held-out episodes (x 1e-3):")
    for name, (_, errors) in results.items():
        print(f"{name:<8} {1e3 * errors['rnn']:.3f}   (reconstruction {1e3 * errors['reconstruction']:.3f}, "
              f"copy the last frame {1e3 * errors['copy_last']:.3f})")
    hybrid = hybrid_config(config)
    figure = comparison_figure(config, {
        "vae": load_vision_model(model_path(config, "vae")), "vaegan": load_vision_model(model_path(config, "vaegan")),
        "hybrid": load_vision_model(model_path(hybrid, "vaegan"))})
    print(f"\nfigure: {figure}")
    vae, vaegan = results["vae"], results["vaegan"]
    sharpness_ratio = vaegan[0]["sharpness"] / vae[0]["sharpness"]
    print(f"\nsharpness VAE/GAN / VAE: {sharpness_ratio:.2f} (target >= 1.5); reconstruction diversity "
          f"{vaegan[0]['diversity']:.2f} (target >= 0.7); MSE VAE/GAN / VAE {vaegan[0]['mse'] / vae[0]['mse']:.2f}")
    print(f"MDN-RNN one-step prediction, pixel MSE VAE/GAN / VAE: {vaegan[1]['rnn'] / vae[1]['rnn']:.2f}")
    publish("vision_quality", [("sharpness VAE/GAN / VAE", sharpness_ratio, ">= 1.5"),
                               ("VAE/GAN reconstruction diversity", vaegan[0]["diversity"], ">= 0.7")])


if __name__ == "__main__":
    main()
