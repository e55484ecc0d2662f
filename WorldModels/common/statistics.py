"""Statistics of scores, in small pure functions: sample standard deviations (ddof=1, everywhere), Student's
t intervals of a mean, and two controllers' scores compared."""

import numpy as np
from scipy import stats


def sample_std(values):
    """The sample standard deviation (ddof=1) of `values`, as a float; 0.0 for a single value (no spread
    can be measured from one, and a log needs a number)."""
    values = np.asarray(values, np.float64).ravel()
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def mean_interval(scores, confidence=0.95):
    """(low, high): Student's t confidence interval of the mean of `scores` (at least two of them)."""
    scores = np.asarray(scores, np.float64)
    half_width = stats.t.ppf((1 + confidence) / 2, len(scores) - 1) * scores.std(ddof=1) / np.sqrt(len(scores))
    return float(scores.mean() - half_width), float(scores.mean() + half_width)


def compare_scores(first, second, paired, confidence=0.95):
    """Two controllers' scores compared: the difference of means (first - second), a t-test (its confidence
    interval of the difference and p-value) and, as scores are far from normal (a lap or a crash), a rank
    test's p-value. paired (the same episode seeds, in the same order): the paired t-test and Wilcoxon's
    signed-rank test; else Welch's t-test and the Mann-Whitney U test. Returns a dict."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if paired and np.array_equal(first, second):  # the same score on every episode: no difference, no test
        return {"difference": 0.0, "low": 0.0, "high": 0.0, "t": 0.0, "p_t": 1.0, "p_rank": 1.0, "paired": True}
    if paired:
        t_test = stats.ttest_rel(first, second)
        rank_p = stats.wilcoxon(first, second).pvalue
    else:
        t_test = stats.ttest_ind(first, second, equal_var=False)
        rank_p = stats.mannwhitneyu(first, second, alternative="two-sided").pvalue
    interval = t_test.confidence_interval(confidence)
    return {"difference": float(first.mean() - second.mean()), "low": float(interval.low),
            "high": float(interval.high), "t": float(t_test.statistic), "p_t": float(t_test.pvalue),
            "p_rank": float(rank_p), "paired": paired}


# -- over independent runs: a method's claim holds over runs, not over one run's episodes ----------

def runs_summary(run_means, confidence=0.95):
    """The mean over independent runs of each run's mean score, their sample std, and Student's t
    interval of that mean (n - 1 degrees of freedom; None for a single run). Returns a dict."""
    run_means = np.asarray(run_means, np.float64)
    interval = mean_interval(run_means, confidence) if len(run_means) > 1 else None
    return {"runs": len(run_means), "mean": float(run_means.mean()), "std": sample_std(run_means),
            "ci95": list(interval) if interval else None}


def compare_runs(first_runs, second_runs, confidence=0.95, resamples=10000, seed=0):
    """Two methods compared over their independent runs, each run given as its per-episode scores.
    Welch's t-test on the run means (its interval of the difference first - second and p-value), and a
    hierarchical bootstrap as a second opinion: runs resampled within each method, then episodes within
    each run, the difference of the methods' means of run means each time; its percentile interval and
    the share of resamples on the other side of zero (two-sided). At least two runs a method."""
    first_means = np.array([np.mean(scores) for scores in first_runs])
    second_means = np.array([np.mean(scores) for scores in second_runs])
    if min(len(first_means), len(second_means)) < 2:
        raise ValueError("compare_runs needs at least two runs of each method")
    t_test = stats.ttest_ind(first_means, second_means, equal_var=False)
    interval = t_test.confidence_interval(confidence)
    rng = np.random.default_rng(seed)
    differences = (_bootstrap_means(first_runs, resamples, rng) - _bootstrap_means(second_runs, resamples, rng))
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return {"difference": float(first_means.mean() - second_means.mean()), "low": float(interval.low),
            "high": float(interval.high), "p_t": float(t_test.pvalue), "bootstrap_low": float(low),
            "bootstrap_high": float(high),
            "p_bootstrap": float(min(1.0, 2 * min(np.mean(differences <= 0), np.mean(differences >= 0))))}


def _bootstrap_means(runs, resamples, rng):
    """(resamples,): the mean over len(runs) runs drawn with replacement, each drawn run's episodes drawn
    with replacement again (independently, also when a run is drawn twice)."""
    runs = [np.asarray(scores, np.float64) for scores in runs]
    picks = rng.integers(len(runs), size=(resamples, len(runs)))
    total = np.zeros(resamples)
    for slot in range(len(runs)):
        for index, scores in enumerate(runs):
            rows = np.flatnonzero(picks[:, slot] == index)
            total[rows] += scores[rng.integers(len(scores), size=(len(rows), len(scores)))].mean(axis=1)
    return total / len(runs)
