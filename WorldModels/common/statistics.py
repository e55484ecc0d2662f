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
