"""How many real environment steps does a controller cost? Held-out score of the CMA-ES mean against
real steps and wall-clock hours, for controller runs of train.py, beside the TF2 port's curve.

    python bench/sample_efficiency.py LABEL=path/to/controller [LABEL=path/to/controller ...]
                                      [--output results/bench/sample_efficiency.png]

Each path is a controller folder (the one holding log.csv and best.json). For every run it prints
the held-out score of the mean at each evaluation against the real steps spent so far (candidates'
training episodes and every held-out test: log.csv's `steps`, and generation 0's test, best.json's
`initial_steps`, in runs that record it) and the
wall-clock hours (comparable only between runs that had the machine alike), and
draws all runs on one plot with the TF2 World Models port's published curve (zacwellmer/WorldModels,
CarRacing-v0: generation 0: 166, 10: 418, 20: 736, 30: 766, 40: 802, 60: 835, 70: 838), its steps
taken as generations x 64 candidates x 16 episodes x 1,000 steps (the assumption: full episodes; its
held-out tests are not counted, so its curve is, if anything, drawn too far left).

Beside each run, the real steps its world model's rollouts took (V and M are trained on them; the
controller's steps come on top): counted from the rollouts' record/ folder beside the run's vision
folder when it is there, else read from a `rollouts.json` ({"episodes": n, "steps": n}) in the run's
folder or its parent (the copies under docs/runs/ keep one; `--write_rollouts FOLDER` writes it from
the rollouts of a run given).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import argparse
import csv
import json

from common.episodes import list_episodes
from common.files import write_json_atomic
from common.plots import save_figure

TF2_PORT = {0: 166, 10: 418, 20: 736, 30: 766, 40: 802, 60: 835, 70: 838}  # generation: held-out score
TF2_PORT_STEPS_PER_GENERATION = 64 * 16 * 1000
ROLLOUTS_FILE = "rollouts.json"


def evaluations(folder):
    """[(real steps so far, wall hours so far, held-out score, its std)] of one run, from generation 0."""
    best = json.loads((folder / "best.json").read_text())
    with open(folder / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    steps, seconds = best.get("initial_steps", 0), 0.0  # generation 0's held-out test (recorded since 2026-12-07)
    points = [(steps, seconds, best["initial_score"], best["initial_score_std"])]
    for row in rows:
        steps, seconds = steps + int(row["steps"]), seconds + float(row["seconds"])
        if row["test_score"]:
            points.append((steps, seconds / 3600, float(row["test_score"]), float(row["test_std"])))
    return points


def rollouts_summary(folder):
    """{"episodes", "steps"} of the rollouts V and M of a controller folder were trained on, or None."""
    record = folder.resolve().parents[1] / "record"  # <experiment>/<env>/record beside <vision>/<controller>
    if any(record.glob("*.npz")):
        episodes = list_episodes(record)
        return {"episodes": len(episodes), "steps": sum(info.length for info in episodes)}
    for candidate in (folder / ROLLOUTS_FILE, folder.parent / ROLLOUTS_FILE):
        if candidate.exists():
            return json.loads(candidate.read_text())
    return None


def figure(runs):
    from matplotlib.figure import Figure

    plot = Figure(figsize=(7, 4.8), layout="constrained")
    axis = plot.subplots()
    generations = sorted(TF2_PORT)
    axis.plot([g * TF2_PORT_STEPS_PER_GENERATION for g in generations], [TF2_PORT[g] for g in generations], "k--o",
              markersize=3, label="TF2 port, generations 0-70 (64 x 16 full episodes a generation)")
    for label, points in runs.items():
        axis.errorbar([p[0] for p in points], [p[2] for p in points], yerr=[p[3] for p in points], fmt="o-",
                      capsize=3, label=label)
    axis.set_xscale("symlog", linthresh=1e5)
    axis.set_xlabel("real environment steps (controller training and its held-out tests)")
    axis.set_ylabel("held-out score of the CMA-ES mean")
    plot.legend(fontsize=8, loc="outside lower center", ncols=2)  # below the axes: no curve is hidden
    return plot


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=controller folder")
    parser.add_argument("--output", default="results/bench/sample_efficiency.png")
    parser.add_argument("--write_rollouts", metavar="FOLDER",
                        help=f"write the first run's rollout count to FOLDER/{ROLLOUTS_FILE} (for a record copy) "
                        "and stop")
    args = parser.parse_args()
    runs, rollouts = {}, {}
    for run in args.runs:
        label, _, path = run.rpartition("=")
        folder = Path(path)
        if not (folder / "log.csv").exists() or not (folder / "best.json").exists():
            sys.exit(f"{folder}: no log.csv and best.json; give a controller folder of train.py")
        runs[label or folder.name] = evaluations(folder)
        rollouts[label or folder.name] = rollouts_summary(folder)
    if args.write_rollouts:
        first = next(iter(rollouts.values()))
        if first is None:
            sys.exit(f"{args.runs[0]}: no rollouts found beside it to count")
        print(f"wrote {write_json_atomic(Path(args.write_rollouts) / ROLLOUTS_FILE, first)}")
        return
    for label, points in runs.items():
        collected = rollouts[label]
        print(f"\n{label}\nV and M's rollouts: " + (f"{collected['steps']:,} real steps ({collected['episodes']} "
                                                      "episodes)" if collected else "not recorded"))
        print("| real steps | wall hours | held-out score of the mean |\n|---:|---:|---:|")
        for steps, hours, score, std in points:
            print(f"| {steps:,} | {hours:.2f} | {score:.1f} ± {std:.1f} |")
    print(f"\nfigure: {save_figure(figure(runs), Path(args.output))}")


if __name__ == "__main__":
    main()
