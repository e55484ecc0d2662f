"""Which exploration policy makes the best world model? Judged by the world model it yields.

    python bench/exploration_quality.py [--episodes 24] [--test_episodes 6] [--frames 300]
                                        [--controller path/to/best.json] [--key value ...]

For each exploration policy (original, brownian, white, linear; and `controller` when a trained
controller is given, acting through a copy of its world model with extract_action_noise), the same
number of frames (episodes of exactly --frames steps: shorter ones are collected again), then a VAE
and an MDN-RNN trained on them with the project's own stages (extract.py, vae_train.py, series.py,
rnn_train.py). Every world model is then tested on held-out episodes (other seeds) of every policy
and of a scripted driver that follows the track like a good agent (policies.pursuit_driver):

    reconstruction  pixel MSE of the VAE's reconstruction of the frames
    prediction      pixel MSE of the MDN-RNN's one-step prediction of frame t+1, decoded
                    (memory.one_step_frame_errors: comparable across latent spaces)

both from step 50 on (CarRacing zooms in over its first 50 frames), beside the copy-last-frame
baseline, plus each policy's motion (mean absolute change of a pixel, 0-255, between consecutive
frames from step 50), track coverage, time on the road and speed, and what each VAE's z knows about
driving (linear probes to speed and on-road, vision_metrics.driving_probe). The policy whose world model
predicts the driver's episodes best is the one extract.py should use by default (extract_policy).
Outputs stay under results_dir (default results/bench/exploration): a rerun reuses what is done.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import json
import shutil
import time

import numpy as np

from common.config import parse_config, read_config_file
from common.episodes import list_episodes, load_episode
from common.layout import experiment_dir, model_path, record_dir, rnn_path, vision_dir
from stages.memory import encode_series, load_rnn, one_step_frame_errors, train_memory
from stages.policies import pursuit_driver
from stages.rollouts import extract
from stages.vision import load_vision_model, train_vision
from stages.vision_metrics import driving_probe, latent_means
from timing import machine_description, publish

SMOKE_CONFIG = Path(__file__).resolve().parents[1] / "WorldModels" / "configs" / "smoke.config"
POLICIES = ("original", "brownian", "white", "linear")
WORLD_MODEL_KEYS = ("z_size", "rnn_size", "rnn_num_mixture", "exp_mode", "state_space", "controller_z")
ZOOM_STEPS = 50
DEFAULTS = ["--results_dir", "results/bench/exploration", "--vae_batch_size", "32", "--vae_num_epoch", "8",
            "--validation_frames", "300", "--holdout_fraction", "0.1", "--rnn_size", "128", "--rnn_num_steps", "1600",
            "--rnn_batch_size", "8", "--rnn_max_seq_len", "100", "--rnn_validation_every", "200", "--rnn_r_pred", "0",
            "--rnn_d_pred", "0"]


def arguments(parser):
    parser.add_argument("--episodes", type=int, default=24, help="training episodes per policy")
    parser.add_argument("--test_episodes", type=int, default=6, help="held-out test episodes per policy")
    parser.add_argument("--frames", type=int, default=300, help="steps per episode (every episode has exactly these)")
    parser.add_argument("--controller", default="", help="a trained controller (best.json) to add the on-policy "
                        "`controller` policy; it drives through the world model of --exp_name in --controller_results")
    parser.add_argument("--controller_results", default="results", help="results_dir of the controller's world model")


def policy_config(config, policy, test=False):
    """The config of one policy's rollouts: its own experiment folder, `test/` for its held-out episodes."""
    overrides = {"exp_name": f"explore_{policy}", "extract_policy": "white" if policy == "driver" else policy,
                 "num_episodes": config.test_episodes if test else config.episodes, "max_frames": config.frames,
                 "min_frames": config.frames, "record_name": "test" if test else "record",
                 "seed": config.seed + (1000 if test else 0)}
    if policy == "controller":
        overrides.update(extract_controller=str(Path(config.controller).resolve()))
    return type(config)(**{**vars(config), **overrides})


def collect(config, policy, test=False):
    """Collect a policy's training (or test) episodes; returns their folder."""
    rollouts = policy_config(config, policy, test)
    if policy == "driver":
        extract(rollouts, policy_factory=pursuit_driver, policy_name="driver")
    elif policy == "controller":
        # The controller drives through the world model it was trained with: a copy of that world
        # model (the experiment --exp_name in --controller_results, with its own sizes from its saved
        # rnn_train.config) in a folder of the bench, where the episodes are collected.
        source = type(config)(**{**vars(config), "results_dir": config.controller_results})
        saved = read_config_file(vision_dir(source) / "rnn_train.config")
        driving = type(config)(**{**vars(rollouts), "exp_name": "explore_controller_world_model",
                                  **{key: saved[key] for key in WORLD_MODEL_KEYS}})
        vision_dir(driving).mkdir(parents=True, exist_ok=True)
        for name in (f"{config.vision}.keras", "rnn.keras"):
            shutil.copy2(vision_dir(source) / name, vision_dir(driving) / name)
        extract(driving)
        shutil.copytree(record_dir(driving), record_dir(rollouts), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".*"))
    else:
        extract(rollouts)
    return record_dir(rollouts)


def driving_measures(folder):
    """Motion, track coverage, time on the road and speed of the episodes in `folder` (means)."""
    rows = []
    for info in list_episodes(folder):
        episode = load_episode(info.path)
        frames = episode["obs"][ZOOM_STEPS:].astype(np.float32)
        rows.append((np.mean(np.abs(np.diff(frames, axis=0))), int(episode["tiles_visited"]) / int(episode["N"][0]),
                     np.mean(episode["on_road"]), np.mean(episode["speed"].astype(np.float32)),
                     float(np.sum(episode["reward"].astype(np.float32)))))
    return dict(zip(("motion", "coverage", "on_road", "speed", "reward"), np.mean(rows, axis=0).tolist(), strict=True))


def latent_probe(vision_model, test_folders):
    """What `vision_model`'s z knows about driving: vision_metrics.driving_probe fitted on the even-numbered
    test episodes of every policy and scored on the odd-numbered ones (steps from 50 on)."""
    halves = ({"z": [], "speed": [], "on_road": []}, {"z": [], "speed": [], "on_road": []})
    for folder in test_folders.values():
        for number, info in enumerate(list_episodes(folder)):
            episode = load_episode(info.path, keys=["obs", "speed", "on_road"])
            half = halves[number % 2]
            half["z"].append(latent_means(vision_model, episode["obs"][ZOOM_STEPS:]))
            half["speed"].append(episode["speed"][ZOOM_STEPS:].astype(np.float32))
            half["on_road"].append(episode["on_road"][ZOOM_STEPS:])
    fit, test = ({key: np.concatenate(values) for key, values in half.items()} for half in halves)
    return driving_probe(fit["z"], fit, test["z"], test)


def world_model_errors(config, policy, test_folders):
    """{test policy: {"reconstruction", "prediction", "copy_last": means over the steps from 50 on,
    "prediction_per_episode": [each test episode's mean]}} of `policy`'s world model."""
    trained = policy_config(config, policy)
    vision_model = load_vision_model(model_path(trained, "vae"), trained.z_size)
    rnn = load_rnn(rnn_path(trained))
    results = {}
    for test_policy, folder in test_folders.items():
        sums = {"rnn": [], "reconstruction": [], "copy_last": []}
        for info in list_episodes(folder):
            episode = load_episode(info.path, keys=["obs", "action"])
            errors = one_step_frame_errors(vision_model, rnn, episode["obs"], episode["action"])
            for key in sums:
                sums[key].append(errors[key][ZOOM_STEPS:])
        means = {key: float(np.mean(np.concatenate(values))) for key, values in sums.items()}
        results[test_policy] = {"prediction": means["rnn"], "reconstruction": means["reconstruction"],
                                "copy_last": means["copy_last"],
                                "prediction_per_episode": [float(np.mean(values)) for values in sums["rnn"]]}
    results["probe"] = latent_probe(vision_model, test_folders)
    return results


def standard_error(values):
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def table(title, policies, test_policies, value):
    lines = [f"\n{title}", "| world model trained on | " + " | ".join(test_policies) + " |",
             "|---|" + "---:|" * len(test_policies)]
    lines += [f"| {policy} | " + " | ".join(value(policy, test) for test in test_policies) + " |"
              for policy in policies]
    return "\n".join(lines)


def main():
    config = parse_config(["-c", str(SMOKE_CONFIG), *DEFAULTS, *sys.argv[1:]], description=__doc__.split("\n\n")[0],
                          add_arguments=arguments)
    policies = POLICIES + (("controller",) if config.controller else ())
    started = time.monotonic()
    print(machine_description())
    train_folders = {policy: collect(config, policy) for policy in policies}
    test_folders = {policy: collect(config, policy, test=True) for policy in (*policies, "driver")}
    results = {}
    for policy in policies:
        trained = policy_config(config, policy)
        train_vision(trained, "vae")
        encode_series(trained)
        train_memory(trained)
        results[policy] = world_model_errors(config, policy, test_folders)
    measured = {**train_folders, "driver": test_folders["driver"]}
    measures = {policy: driving_measures(folder) for policy, folder in measured.items()}
    tests = list(test_folders)

    print(f"\n{config.episodes} training episodes of {config.frames} steps per policy "
          f"({config.episodes * config.frames} frames), {config.test_episodes} held-out episodes per policy; "
          f"VAE {config.vae_num_epoch} epochs, MDN-RNN "
          f"{config.rnn_num_steps} steps; errors are pixel MSE (pixels in [0, 1]) from step {ZOOM_STEPS} on")
    print("\n| policy | motion | track coverage | on the road | speed | reward |\n|---|---:|---:|---:|---:|---:|")
    for policy, row in measures.items():
        print(f"| {policy} | {row['motion']:.2f} | {100 * row['coverage']:.1f}% | {100 * row['on_road']:.0f}% | "
              f"{row['speed']:.1f} | {row['reward']:.0f} |")
    print(table("Next-frame prediction error (x 1e-3) on held-out episodes of each policy", policies, tests,
                lambda policy, test: f"{1e3 * results[policy][test]['prediction']:.2f}"))
    print("| copy last frame | " + " | ".join(f"{1e3 * results[policies[0]][test]['copy_last']:.2f}" for test in tests)
          + " |")
    print(table("Reconstruction error (x 1e-3) on held-out episodes of each policy", policies, tests,
                lambda policy, test: f"{1e3 * results[policy][test]['reconstruction']:.2f}"))

    print("\nWhat z knows about driving (linear probes fitted on half of every policy's test episodes, scored on "
          "the other half):\n| world model trained on | speed R² | on the road: accuracy (majority) |\n|---|---:|---:|")
    for policy in policies:
        probe = results[policy]["probe"]
        print(f"| {policy} | {probe['speed_r2']:.3f} | {probe['on_road_accuracy']:.3f} "
              f"({probe['on_road_majority']:.3f}) |")

    on_driven = {policy: results[policy]["driver"]["prediction"] for policy in policies}
    best = min(on_driven, key=on_driven.get)
    print(f"\nOn the driver's episodes (x 1e-3; mean +- standard error over its {config.test_episodes} episodes; "
          f"difference from {best}, paired by episode):")
    best_episodes = np.array(results[best]["driver"]["prediction_per_episode"])
    for policy in policies:
        episodes = np.array(results[policy]["driver"]["prediction_per_episode"])
        difference = episodes - best_episodes
        print(f"  {policy:<10} {1e3 * episodes.mean():6.2f} +- {1e3 * standard_error(episodes):4.2f}   "
              f"difference {1e3 * difference.mean():+6.2f} +- {1e3 * standard_error(difference):4.2f}")
    print(f"\nbest world model on the driver's episodes: {best}; extract_policy default: {config.extract_policy}; "
          f"{(time.monotonic() - started) / 60:.1f} minutes")
    outputs = experiment_dir(policy_config(config, "original")).parents[1] / "exploration_quality.json"
    outputs.write_text(json.dumps({"errors": results, "measures": measures, "best": best}, indent=1))
    print(f"wrote {outputs}")
    others = [value for policy, value in on_driven.items() if policy != config.extract_policy]
    publish("exploration_quality", [(f"prediction error on driven episodes: the default ({config.extract_policy}) / "
                                     "the best other", on_driven[config.extract_policy] / min(others), "<= 1")])


if __name__ == "__main__":
    main()
