"""Controllers trained in the dream, side by side: their settings, their dream score and their real scores.

    python bench/dream_runs.py docs/runs/laptop_dream/controller_dream docs/runs/... [--episode_set validation]
    python bench/dream_runs.py results/<exp>/CarRacing-v3/vae/controller_dream --behaviour 4 -- -c <config> ...

Each argument is a dream run's controller folder (train.py --dream_env 1), holding best.json and the
train.config it ran with; evaluate.py's per-episode scores on the episode set beside best.json when they
were played (`--validation`: where dream settings are chosen; the test set is played once at the end).
One row per run: the dream's settings (temperature, dream dropout, episode length, population x dream
episodes, generations), the best mean's score in the dream (its held-out dream episodes), its real score on
the held-out episodes train.py plays at the end, and on the episode set with a 95% CI (Student's t), and
what the controller does in the real world where its behaviour.json is there.

`--behaviour N -- <config arguments>` plays the first N validation episodes with the run's best controller
through the config's world model and writes behaviour.json beside best.json: per episode its score, tiles
visited of the track's, mean steering (and mean |steering|), gas and brake, mean speed and the share of
steps on the road. The dream tables of docs/results.md are printed by this script from docs/runs/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import argparse
import json

import numpy as np

from common.config import read_config_file
from common.errors import UserFacingError
from common.statistics import mean_interval
from stages.evaluation import evaluation_scores

LEGACY = {"dream_dropout": 0.0, "dream_max_frames": 0}  # runs made before these keys had neither


def behaviour(folder, episodes, config_arguments):
    """Play `episodes` validation episodes with the folder's best controller; write and return behaviour.json."""
    from common.config import parse_config
    from common.files import write_json_atomic
    from controller import load_controller
    from stages.agent import episode_seeds, load_agent, play_episodes

    config = parse_config(config_arguments)
    parameters, _ = load_controller(Path(folder) / "best.json", config)
    seeds = episode_seeds(config.seed, "validate", 0, episodes)
    played = play_episodes(load_agent(config), config, np.stack([parameters] * episodes), seeds, record=True)
    rows = []
    for index, seed in enumerate(seeds):
        action = np.asarray(played["action"][index], np.float64)
        rows.append({"seed": seed, "score": float(played["scores"][index]),
                     "tiles": f"{played['tiles_visited'][index]}/{played['track_tiles'][index]}",
                     "steer": float(action[:, 0].mean()), "abs_steer": float(np.abs(action[:, 0]).mean()),
                     "gas": float(action[:, 1].mean()), "brake": float(action[:, 2].mean()),
                     "speed": float(np.mean(played["speed"][index])),
                     "on_road": float(np.mean(played["on_road"][index]))})
    write_json_atomic(Path(folder) / "behaviour.json", rows)
    return rows


def behaviour_text(folder):
    """One line per episode of the folder's behaviour.json ("" if it has none)."""
    path = Path(folder) / "behaviour.json"
    if not path.exists():
        return ""
    return "\n".join(f"- {Path(folder).parent.name}/{Path(folder).name}, validation episode {row['seed']}: "
                     f"{row['score']:.1f}, tiles {row['tiles']}; steering {row['steer']:+.2f} (|steering| "
                     f"{row['abs_steer']:.2f}), gas {row['gas']:.2f}, brake {row['brake']:.2f}; speed "
                     f"{row['speed']:.1f}, on the road {row['on_road']:.0%} of the steps"
                     for row in json.loads(path.read_text()))


def run_row(folder, episode_set):
    """One table row (a list of cells) for a dream run's controller folder."""
    folder = Path(folder)
    try:
        best = json.loads((folder / "best.json").read_text())
        settings = {**LEGACY, **read_config_file(folder / "train.config")}
    except (OSError, ValueError, UserFacingError) as error:
        sys.exit(f"{folder}: needs best.json and train.config of a dream run ({error})")
    if not best.get("dream"):
        sys.exit(f"{folder / 'best.json'}: not a dream-trained controller")
    try:
        _, scores = evaluation_scores(folder / "best.json", episode_set=episode_set)
        low, high = mean_interval(scores)
        played = f"{scores.mean():.1f} ± {scores.std(ddof=1):.1f} ({low:.1f} to {high:.1f}; {len(scores)})"
    except UserFacingError:
        played = "-"
    return [folder.parent.name + "/" + folder.name, settings["rnn_temperature"], settings["dream_dropout"],
            settings["dream_max_frames"] or settings["max_frames"],
            f"{settings['controller_num_worker']} x {settings['controller_num_episode']}",
            settings["controller_max_generations"],
            f"{best['score']:.1f} (generation {best['generation']})",
            f"{best['real_score']:.1f} ± {best['real_score_std']:.1f}" if "real_score" in best else "-", played]


def table(folders, episode_set="validation"):
    lines = ["| dream run | temperature | dream dropout | dream episode steps | population x dream episodes | "
             "generations | best mean's dream score | real score, held-out episodes | real score, "
             f"{episode_set} episodes (95% CI; episodes) |", "|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(str(cell) for cell in run_row(folder, episode_set)) + " |" for folder in folders]
    behaviours = [text for text in (behaviour_text(folder) for folder in folders) if text]
    return "\n".join(lines + ([""] + behaviours if behaviours else []))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="controller folders of dream runs")
    parser.add_argument("--episode_set", choices=("validation", "test"), default="validation")
    parser.add_argument("--behaviour", type=int, metavar="N", help="play N validation episodes with the (one) "
                        "run's controller and write its behaviour.json; the config's arguments follow --")
    arguments = sys.argv[1:]
    config_arguments = arguments[arguments.index("--") + 1:] if "--" in arguments else []
    args = parser.parse_args(arguments[:arguments.index("--")] if "--" in arguments else arguments)
    if args.behaviour:
        behaviour(args.runs[0], args.behaviour, config_arguments)
    print(table(args.runs, args.episode_set))
