"""Does the VAE/GAN work as a generative model on CarRacing? Variants of its settings, trained side by side.

    python bench/vaegan_stability.py [--episodes 24] [--epochs 2] [--variants two_pass ...]

Trains the laptop config's VAE/GAN (the authors' discriminator and decoder at a quarter of their
width, batch 32) on the first --episodes episodes of the laptop config's rollouts (run
`extract.py -c WorldModels/configs/laptop.config` first), once per variant, each in its own folder
under results/bench/vaegan_stability/, with the laptop VAE at both KL floors as reference rows. For
each it prints the held-out measures of evaluate_vision (MSE, SSIM, sharpness, diversity of
reconstructions and prior samples) and the realism measures, judged against the held-out frames by
judges no model trained: the Frechet distance in a fixed random network's features and the accuracy
of a fresh two-sample classifier (0.5: cannot tell), for reconstructions, prior samples and a second
set of real frames (the floor); and the balance in the last epoch (share of steps in which the
discriminator and the decoder were updated, the discriminator's mean score of prior samples).
The rows are written to --record (JSON) as well; `--from_record FILE` prints a record's table
without training, and `--from_runs FOLDER ...` the same table for laptop-scale runs recorded under
docs/runs/ (their vision_metrics.json and vaegan_training_log.csv). A rerun reuses finished variants
(and re-evaluates them, keeping the minutes their training took). `--figure VARIANT ...` draws trained
variants' held-out reconstructions and decoded prior samples (the same z) side by side.

Scale: --episodes 24 and --epochs 2 train on ~18,000 frames for ~1,120 steps of 32, a sixth of the
laptop config's 7,400 steps on ~79,000 frames; docs/results.md compares the chosen variant's
measures here with its laptop-scale run.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import argparse
import csv
import json
import time

import numpy as np
import tensorflow as tf

from common.config import for_vision, parse_config
from common.episodes import list_episodes
from common.files import write_json_atomic
from common.layout import model_path, vision_dir
from stages.vision import (
    comparison_figure,
    evaluate_vision,
    held_out_frames,
    load_vision_model,
    prior_latents,
    reference_frames,
    train_vision,
    vision_trained,
)
from stages.vision_metrics import feature_network, frechet_distance, image_features, noise_share, road_share
from timing import machine_description
from vae.vae import sample_latent

ROOT = Path(__file__).resolve().parents[1]
LAPTOP_CONFIG = ROOT / "WorldModels" / "configs" / "laptop.config"
ROLLOUTS = ROOT / "results" / "laptop" / "CarRacing-v3" / "record"
# the VAE/GAN settings every variant starts from, spelt out so that a variant keeps its meaning when the
# laptop config changes: the laptop config's before this bench (KL floor 16 nats, the authors' gamma and
# minimax loss) with the authors' two passes
BASELINE = ["--vaegan_kl_tolerance", "0.5", "--vaegan_gamma", "0.00001", "--vaegan_generator_loss", "minimax",
            "--vaegan_passes", "two", "--vaegan_discriminator_learning_rate", "0.0"]
# name: (vision, config overrides on top of the laptop config and BASELINE)
NON_SATURATING = ["--vaegan_generator_loss", "non_saturating"]
VARIANTS = {
    "vae_kl0.5": ("vae", ["--vae_kl_tolerance", "0.5"]),
    "vae_kl4": ("vae", ["--vae_kl_tolerance", "4.0"]),
    "one_pass": ("vaegan", ["--vaegan_passes", "one"]),  # the laptop VAE/GAN before this bench
    "two_pass": ("vaegan", []),
    "two_pass_non_saturating": ("vaegan", NON_SATURATING),
    "two_pass_kl4": ("vaegan", ["--vaegan_kl_tolerance", "4.0"]),
    "two_pass_non_saturating_kl4": ("vaegan", [*NON_SATURATING, "--vaegan_kl_tolerance", "4.0"]),
    "two_pass_gamma_1e-3": ("vaegan", ["--vaegan_gamma", "0.001"]),
    "two_pass_non_saturating_gamma_1e-3": ("vaegan", [*NON_SATURATING, "--vaegan_gamma", "0.001"]),
    "two_pass_non_saturating_gamma_1e-3_kl4": ("vaegan", [*NON_SATURATING, "--vaegan_gamma", "0.001",
                                                          "--vaegan_kl_tolerance", "4.0"]),
    "two_pass_non_saturating_gamma_1e-2": ("vaegan", [*NON_SATURATING, "--vaegan_gamma", "0.01"]),
    "two_pass_non_saturating_gamma_1e-2_kl4": ("vaegan", [*NON_SATURATING, "--vaegan_gamma", "0.01",
                                                          "--vaegan_kl_tolerance", "4.0"]),
    "two_pass_slow_discriminator": ("vaegan", ["--vaegan_discriminator_learning_rate", "0.0001"]),
    "two_pass_non_saturating_slow_discriminator": ("vaegan", [*NON_SATURATING,
                                                              "--vaegan_discriminator_learning_rate", "0.0001"]),
    # the laptop config's VAE/GAN (the row above) with R1 on its discriminator
    **{f"two_pass_non_saturating_gamma_1e-3_kl4_r1_{weight}": ("vaegan", [
        *NON_SATURATING, "--vaegan_gamma", "0.001", "--vaegan_kl_tolerance", "4.0", "--vaegan_r1_weight", weight])
       for weight in ("0.1", "1", "10")},
    # ... with the discriminator updated at every step (margin = equilibrium: its cost never falls below 0)
    "two_pass_non_saturating_gamma_1e-3_kl4_discriminator_always": ("vaegan", [
        *NON_SATURATING, "--vaegan_gamma", "0.001", "--vaegan_kl_tolerance", "4.0", "--vaegan_margin", "0.68"]),
    # ... with layer normalisation in the decoder (a z decodes the same in training and in use)
    "two_pass_non_saturating_gamma_1e-3_kl4_layer_norm": ("vaegan", [
        *NON_SATURATING, "--vaegan_gamma", "0.001", "--vaegan_kl_tolerance", "4.0",
        "--vaegan_decoder_normalisation", "layer"]),
    # ... and at the KL floor of 16 nats, where the posterior covers more of the prior
    "two_pass_non_saturating_gamma_1e-3_layer_norm": ("vaegan", [
        *NON_SATURATING, "--vaegan_gamma", "0.001", "--vaegan_decoder_normalisation", "layer"]),
}
BALANCE = ("discriminator_updates", "decoder_updates", "prior_score")  # the last epoch's training log


def last_epoch_balance(log_path):
    """The last row's update shares and prior score from a VAE/GAN's training_log.csv ({} if absent)."""
    if not log_path.exists():
        return {}
    rows = list(csv.DictReader(log_path.read_text().splitlines()))
    return {key: float(rows[-1][key]) for key in BALANCE if rows and rows[-1].get(key)}


def variant_config(name, args):
    """The config of one variant, its experiment's record/ linking the first --episodes laptop rollouts."""
    experiment = Path(args.results_dir) / name / "CarRacing-v3"
    record = experiment / "record"
    record.mkdir(parents=True, exist_ok=True)
    for info in list_episodes(ROLLOUTS)[:args.episodes]:  # the same first episodes for every variant
        link = record / info.path.name
        if not link.exists():
            link.symlink_to(info.path.resolve())
    return parse_config(["-c", str(LAPTOP_CONFIG), "--results_dir", args.results_dir, "--exp_name", name,
                         "--holdout_fraction", str(args.holdout_fraction), "--vae_num_epoch", str(args.epochs),
                         *BASELINE, *VARIANTS[name][1]])


def run_variant(name, args):
    """Train (or reuse) one variant and measure it: its row (a dict)."""
    vision, overrides = VARIANTS[name]
    config = variant_config(name, args)
    started, reused = time.monotonic(), vision_trained(for_vision(config, vision), vision)
    train_vision(for_vision(config, vision), vision)
    metrics = evaluate_vision(config, visions=(vision,))[vision]  # today's measures, for finished runs too
    balance = last_epoch_balance(vision_dir(for_vision(config, vision), vision) / "training_log.csv")
    return {"variant": name, "vision": vision, "overrides": overrides, **metrics, **balance,
            "minutes": None if reused else (time.monotonic() - started) / 60}


def table(rows):
    """The markdown table of the rows (rows measured before a measure existed leave its cell blank)."""
    lines = ["| variant | MSE | SSIM | sharpness | diversity: reconstructions / prior | Frechet: real / "
             "reconstructions / prior | two-sample accuracy: real / reconstructions / prior | prior samples: "
             "noise / road (real frames' road) / precision / recall | last epoch: D updated / decoder updated / "
             "D(prior) | minutes |", "|---|---:|---:|---:|---|---|---|---|---|---:|"]
    for row in rows:
        balance = (" / ".join(f"{row[key]:.3g}" for key in BALANCE) if "prior_score" in row else "")
        prior = (f"{row['prior_noise_share']:.3f} / {row['road_share_prior']:.3f} ({row['road_share_real']:.3f}) / "
                 f"{row['precision_prior']:.3f} / {row['recall_prior']:.3f}" if "precision_prior" in row else "")
        lines.append(
            f"| {row['variant']} | {row['mse']:.5f} | {row['ssim']:.3f} | {row['sharpness']:.2f} | "
            f"{row['diversity']:.2f} / {row['prior_diversity']:.2f} | "
            + " / ".join(f"{row[f'frechet_{kind}']:.3g}" for kind in ("real", "reconstruction", "prior")) + " | "
            + " / ".join(f"{row[f'two_sample_{kind}']:.3f}" for kind in ("real", "reconstruction", "prior"))
            + f" | {prior} | {balance} | {'' if row.get('minutes') is None else format(row['minutes'], '.1f')} |")
    return "\n".join(lines)


def decoder_modes_table(measured):
    """The markdown table of a record's decoder_modes: one row per variant and mode."""
    lines = ["| variant | decoded with | prior samples: noise / road (real frames' road) | Frechet: prior |",
             "|---|---|---|---:|"]
    for name, measures in measured.items():
        lines += [f"| {name} | {mode} | {measures[mode]['noise']:.3f} / {measures[mode]['road']:.3f} "
                  f"({measures['road_share_real']:.3f}) | {measures[mode]['frechet']:.3g} |" for mode in DECODER_MODES]
    return "\n".join(lines)


def run_rows(folders):
    """Rows of laptop-scale runs recorded under docs/runs/: each folder's vision_metrics.json and, for a
    VAE/GAN, the last epoch of its vaegan_training_log.csv; the variant is the folder's name."""
    return [{"variant": Path(folder).name, **json.loads((Path(folder) / "vision_metrics.json").read_text()),
             **last_epoch_balance(Path(folder) / "vaegan_training_log.csv")} for folder in folders]


def figure(names, args):
    """The held-out frames, reconstructions and prior samples (the same z) of trained variants in one
    figure (stages.vision.comparison_figure), written to the first variant's experiment: its path."""
    configs = {name: for_vision(variant_config(name, args), VARIANTS[name][0]) for name in names}
    missing = [name for name in names if not model_path(configs[name], VARIANTS[name][0]).exists()]
    if missing:
        sys.exit(f"--figure: {', '.join(missing)} not trained under {args.results_dir}; run them first")
    models = {name: load_vision_model(model_path(config, VARIANTS[name][0]), config.z_size)
              for name, config in configs.items()}
    return comparison_figure(configs[names[0]], models)


DECODER_MODES = ("moving statistics (inference)", "batch statistics, prior samples alone",
                 "batch statistics, with posterior z (as in training)")


def decoder_modes(name, args, batch_size=250):
    """Do a trained VAE/GAN's decoded prior samples depend on its decoder's batch normalisation? The
    held-out count of prior samples (the same z as vision_metrics) decoded three ways (DECODER_MODES):
    with the moving statistics, as every measure decodes them; with each batch's own statistics; and
    in a batch with as many posterior samples of held-out frames, as the GAN's pass decodes them in
    training. {mode: {"noise": noise share, "road": road share, "frechet": Frechet distance to the
    reference frames in the fixed network's features}}, plus the real frames' road share."""
    config = for_vision(variant_config(name, args), "vaegan")
    model = load_vision_model(model_path(config, "vaegan"), config.z_size)
    training, _, held_out = held_out_frames(config)
    frames = held_out.astype("float32") / 255.0
    prior_z = prior_latents(len(frames), model.z_size)
    mu, logvar = model.encode(frames)
    posterior_z = sample_latent(mu, logvar, tf.random.stateless_normal(mu.shape, (0, 1))).numpy()

    def decoded(mode):
        batches = []
        for start in range(0, len(prior_z), batch_size):
            prior = batch = prior_z[start:start + batch_size]
            if mode == DECODER_MODES[2]:  # the posterior samples first, as the GAN's pass concatenates them
                batch = np.concatenate([posterior_z[start:start + batch_size], prior])
            batches.append(model.decoder(batch, training=mode != DECODER_MODES[0]).numpy()[-len(prior):])
        return np.concatenate(batches)

    network = feature_network()
    reference = image_features(network, reference_frames(config, training).astype("float32") / 255.0)
    measures = {"road_share_real": road_share(frames)}
    for mode in DECODER_MODES:  # training=True updates the moving statistics: measured last, never saved
        samples = decoded(mode)
        measures[mode] = {"noise": noise_share(frames, samples), "road": road_share(samples),
                          "frechet": frechet_distance(reference, image_features(network, samples))}
    return measures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=24, help="the first this many laptop rollouts")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--holdout_fraction", type=float, default=0.1,
                        help="0.05 with --episodes 100 holds out the laptop config's own held-out episodes")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--results_dir", default=str(ROOT / "results" / "bench" / "vaegan_stability"))
    parser.add_argument("--record", default=str(ROOT / "results" / "bench" / "vaegan_stability" / "record.json"))
    parser.add_argument("--from_record", help="print this record's table (after --from_runs' rows) and stop")
    parser.add_argument("--from_runs", nargs="+", help="print the table of these run records (folders with a "
                        "vision_metrics.json, such as docs/runs/laptop_vaegan_v2) and stop")
    parser.add_argument("--figure", nargs="+", choices=list(VARIANTS),
                        help="draw these trained variants' reconstructions and prior samples side by side and stop")
    parser.add_argument("--decoder_modes", nargs="+", choices=[name for name, (vision, _) in VARIANTS.items()
                                                              if vision == "vaegan"],
                        help="measure these trained VAE/GANs' prior samples decoded with moving and with batch "
                        "statistics (recorded under the record's decoder_modes) and stop")
    args = parser.parse_args()
    if args.decoder_modes:
        missing = [name for name in args.decoder_modes
                   if not model_path(for_vision(variant_config(name, args), "vaegan"), "vaegan").exists()]
        if missing:
            sys.exit(f"--decoder_modes: {', '.join(missing)} not trained under {args.results_dir}; run them first")
        record = Path(args.record)
        saved = json.loads(record.read_text())
        for name in args.decoder_modes:
            saved.setdefault("decoder_modes", {})[name] = decoder_modes(name, args)
            write_json_atomic(record, saved)
        print(decoder_modes_table(saved["decoder_modes"]))
        return
    if args.figure:
        print(f"wrote {figure(args.figure, args)}")
        return
    if args.from_record or args.from_runs:  # both: the runs' rows, then the record's
        saved = json.loads(Path(args.from_record).read_text()) if args.from_record else {"rows": []}
        print(table((run_rows(args.from_runs) if args.from_runs else []) + saved["rows"]))
        if "decoder_modes" in saved:
            print("\n" + decoder_modes_table(saved["decoder_modes"]))
        return
    if len(list_episodes(ROLLOUTS)) < args.episodes:
        sys.exit(f"{ROLLOUTS}: fewer than {args.episodes} episodes; run "
                 "python WorldModels/extract.py -c WorldModels/configs/laptop.config first")
    machine = machine_description()
    print(machine)
    record = Path(args.record)
    saved = json.loads(record.read_text()) if record.exists() else {}  # its other measures are kept
    rows = saved.get("rows", [])
    for name in args.variants:
        earlier = next((row for row in rows if row["variant"] == name), None)
        row = run_variant(name, args)
        if row["minutes"] is None:  # reused and only re-measured: the minutes its training took
            row["minutes"] = earlier["minutes"] if earlier else float("nan")
        rows = [other for other in rows if other["variant"] != name] + [row]
        write_json_atomic(record, {**saved, "machine": machine, "episodes": args.episodes, "epochs": args.epochs,
                                   "rows": rows})
        print(table(rows), flush=True)
    print(f"\nthe laptop config's vision models on its first {args.episodes} rollouts, {args.epochs} epochs; "
          f"{machine}\n{table(rows)}\nrecord: {record}")


if __name__ == "__main__":
    main()
