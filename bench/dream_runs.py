"""Controllers trained in the dream, side by side: their settings, their dream score and their real scores.

    python bench/dream_runs.py docs/runs/laptop_dream/controller_dream docs/runs/... [--episode_set validation]

Each argument is a dream run's controller folder (train.py --dream_env 1), holding best.json and the
train.config it ran with; evaluate.py's per-episode scores on the episode set beside best.json when they
were played (`--validation`: where dream settings are chosen; the test set is played once at the end).
One row per run: the dream's settings (temperature, dream dropout, episode length, population x dream
episodes, generations), the best mean's score in the dream (its held-out dream episodes), its real score on
the held-out episodes train.py plays at the end, and on the episode set with a 95% CI (Student's t). The
dream tables of docs/results.md are printed by this script from docs/runs/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import argparse
import json

from common.config import read_config_file
from common.errors import UserFacingError
from common.statistics import mean_interval
from stages.evaluation import evaluation_scores

LEGACY = {"dream_dropout": 0.0, "dream_max_frames": 0}  # runs made before these keys had neither


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
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="controller folders of dream runs")
    parser.add_argument("--episode_set", choices=("validation", "test"), default="validation")
    args = parser.parse_args()
    print(table(args.runs, args.episode_set))
