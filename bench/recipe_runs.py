"""Which controller recipe is better? Recipes compared over their independent CMA-ES runs, on one episode set.

    python bench/recipe_runs.py "baseline=docs/runs/a/best.json,docs/runs/b/best.json" "mirrored=..." \
        [--episode_set validation]

Each argument is a recipe: a label and the best.json of each of its independent runs (other controller_seed,
the same world model), scored by `evaluate.py` on the same episodes (`--validation` for the validation
set, where recipes are chosen; the test set is played once per final recipe). For each recipe: every run's
mean, the mean over runs with its between-run 95% CI (Student's t, n - 1 degrees of freedom) and the
sample std of the run means. Then every recipe against the first, over runs: Welch's t-test on the run
means and a hierarchical bootstrap (runs, then episodes), common.statistics.compare_runs. One run's
episodes say how good that controller is; only the spread between runs says how good the recipe is.
The tables of docs/results.md's recipe search are printed by this script from docs/runs/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import argparse

from common.layout import EPISODE_SETS
from common.statistics import compare_runs, runs_summary
from stages.evaluation import evaluation_scores


def recipe_scores(paths, episode_set):
    """[per-episode scores of each run] (gymnasium, the judge); the runs must have played the same seeds."""
    runs = [evaluation_scores(path, episode_set=episode_set) for path in paths]
    for path, (seeds, _) in zip(paths[1:], runs[1:], strict=True):
        if list(seeds) != list(runs[0][0]):
            sys.exit(f"{path}: scored on other {episode_set} episodes than {paths[0]}; evaluate both alike")
    return [scores for _, scores in runs]


def table(recipes, episode_set="validation"):
    """recipes: [(label, [best.json of each run])]. The markdown table, one row per recipe, then each recipe
    against the first over runs."""
    scored = [(label, recipe_scores(paths, episode_set)) for label, paths in recipes]
    episodes = len(scored[0][1][0])
    lines = [f"| recipe ({episodes} {episode_set} episodes a run) | runs | run means | mean over runs (between-run "
             "95% CI) | sample std of the run means |", "|---|---:|---|---|---:|"]
    for label, runs in scored:
        summary = runs_summary([scores.mean() for scores in runs])
        interval = (f" ({summary['ci95'][0]:.1f} to {summary['ci95'][1]:.1f})" if summary["ci95"] else "")
        lines.append(f"| {label} | {summary['runs']} | {', '.join(f'{scores.mean():.1f}' for scores in runs)} | "
                     f"{summary['mean']:.1f}{interval} | {summary['std']:.1f} |")
    first_label, first_runs = scored[0]
    for label, runs in scored[1:]:
        if min(len(runs), len(first_runs)) < 2:
            lines += ["", f"{label} - {first_label}: fewer than two runs on a side, no test over runs"]
            continue
        result = compare_runs(runs, first_runs)
        lines += ["", f"{label} - {first_label}, over runs: {result['difference']:+.1f} (Welch's t on run means: "
                  f"95% CI {result['low']:+.1f} to {result['high']:+.1f}, p = {result['p_t']:.3g}; hierarchical "
                  f"bootstrap: {result['bootstrap_low']:+.1f} to {result['bootstrap_high']:+.1f}, "
                  f"p = {result['p_bootstrap']:.3g})"]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="+", help="label=best.json,best.json,... (one file per independent run)")
    parser.add_argument("--episode_set", choices=list(EPISODE_SETS), default="validation")
    args = parser.parse_args()
    recipes = [(item.split("=", 1)[0], [Path(path) for path in item.split("=", 1)[1].split(",")])
               for item in args.recipes]
    print(table(recipes, args.episode_set))


if __name__ == "__main__":
    main()
