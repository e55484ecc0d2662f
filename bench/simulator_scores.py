"""The decisive check of the two simulators: the same controllers scored on 100 episodes in each.

    python bench/simulator_scores.py "label=docs/runs/<folder>/best.json" ...

For every controller file given, its evaluations by `evaluate.py` (gymnasium's, the judge, and
`--env_backend envpool`'s, written beside it: docs/pipeline.md) are read and printed as one table row:
each simulator's mean ± std with its 95% CI, and envpool - gymnasium with Welch's 95% CI and the
Mann-Whitney U p-value. Not paired: the two simulators draw other tracks from the same seeds.
Then, in gymnasium, every controller against the first (the same seeds, the same tracks: paired).
The rows of docs/results.md's "The two simulators" are printed by this script from docs/runs/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import argparse

from common.statistics import compare_scores, mean_interval
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


def table(controllers):
    """controllers: [(label, path to best.json)]. The markdown table and, in gymnasium, each controller
    against the first."""
    lines = [f"| controller ({len(evaluation_scores(controllers[0][1])[1])} episodes in each simulator) | "
             "gymnasium: mean ± std (95% CI) | envpool: mean ± std (95% CI) | envpool - gymnasium (Welch 95% CI) "
             "| Mann-Whitney p |", "|---|---|---|---|---:|"]
    lines += [simulator_row(label, path) for label, path in controllers]
    first_label, first_path = controllers[0]
    lines += ["", *(score_comparison(evaluation_scores(path), evaluation_scores(first_path), label, first_label)
                    + " (gymnasium)" for label, path in controllers[1:])]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("controllers", nargs="+", help="label=path to a controller file evaluated in both")
    args = parser.parse_args()
    controllers = [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in args.controllers]
    print(table(controllers))


if __name__ == "__main__":
    main()
