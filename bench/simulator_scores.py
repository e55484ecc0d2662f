"""The decisive check of the two simulators: the same controllers scored on 100 episodes in each.

    python bench/simulator_scores.py "label=docs/runs/<folder>/best.json" ... [--group PREFIX ...]

For every controller file given, its evaluations by `evaluate.py` (gymnasium's, the judge, and
`--env_backend envpool`'s, written beside it: docs/pipeline.md) are read and printed as one table row:
each simulator's mean ± std with its 95% CI, and envpool - gymnasium with Welch's 95% CI and the
Mann-Whitney U p-value. Not paired: the two simulators draw other tracks from the same seeds.
Then, in gymnasium, every controller against the first (the same seeds, the same tracks: paired).
With --group PREFIX, the controllers whose label starts with PREFIX are independent runs of one method:
their gymnasium means, the mean over runs with its between-run 95% CI (Student's t, n - 1 degrees of
freedom) and the sample std of the run means.
The rows of docs/results.md's "The two simulators" are printed by this script from docs/runs/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import argparse

from common.statistics import compare_scores, mean_interval, runs_summary
from stages.evaluation import evaluation_scores
from stages.report import score_comparison

BACKENDS = ("gymnasium", "envpool")


def simulator_row(label, path):
    """One markdown row: the controller's score in each simulator and the difference between them."""
    scores = {backend: evaluation_scores(path, backend)[1] for backend in BACKENDS}
    cells = []
    for backend in BACKENDS:
        low, high = mean_interval(scores[backend])
        cells.append(f"{scores[backend].mean():.1f} ± {scores[backend].std(ddof=1):.1f} ({low:.1f} to {high:.1f})")
    difference = compare_scores(scores["envpool"], scores["gymnasium"], paired=False)
    return (f"| {label} | {' | '.join(cells)} | {difference['difference']:+.1f} ({difference['low']:+.1f} to "
            f"{difference['high']:+.1f}) | {difference['p_rank']:.2g} |")


def group_line(prefix, controllers):
    """The gymnasium means of the controllers whose label starts with `prefix` (independent runs), and their
    mean over runs with its between-run 95% CI."""
    means = [evaluation_scores(path)[1].mean() for label, path in controllers if label.startswith(prefix)]
    summary = runs_summary(means)
    interval = (f" (between-run 95% CI {summary['ci95'][0]:.1f} to {summary['ci95'][1]:.1f})"
                if summary["ci95"] else "")
    return (f"{prefix}, {summary['runs']} runs (gymnasium): run means {', '.join(f'{mean:.1f}' for mean in means)}; "
            f"their mean {summary['mean']:.1f}{interval}, sample std {summary['std']:.1f}")


def table(controllers, groups=()):
    """controllers: [(label, path to best.json)]. The markdown table and, in gymnasium, each controller
    against the first; then a line for each group of runs (group_line)."""
    lines = [f"| controller ({len(evaluation_scores(controllers[0][1])[1])} episodes in each simulator) | "
             "gymnasium: mean ± std (95% CI) | envpool: mean ± std (95% CI) | envpool - gymnasium (Welch 95% CI) "
             "| Mann-Whitney p |", "|---|---|---|---|---:|"]
    lines += [simulator_row(label, path) for label, path in controllers]
    first_label, first_path = controllers[0]
    lines += ["", *(score_comparison(evaluation_scores(path), evaluation_scores(first_path), label, first_label)
                    + " (gymnasium)" for label, path in controllers[1:])]
    lines += [group_line(prefix, controllers) for prefix in groups]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("controllers", nargs="+", help="label=path to a controller file evaluated in both")
    parser.add_argument("--group", action="append", default=[], help="label prefix of independent runs of one "
                        "method, summarised over runs")
    args = parser.parse_args()
    controllers = [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in args.controllers]
    print(table(controllers, args.group))


if __name__ == "__main__":
    main()
