"""The statistics behind the verdicts: glue over ``scipy.stats``, nothing re-derived by hand but Holm.

* :func:`summary`: n, mean, sample std (ddof = 1), median of per-seed values;
* :func:`difference_test`: ours against the paper's printed figure. Welch's t-test from summary
  statistics (``scipy.stats.ttest_ind_from_stats``) where the paper prints a ± (with its n seeds);
  otherwise a one-sample t-test of our seeds against the printed value (``ttest_1samp``): a figure
  without a ± is treated as exact;
* :func:`equivalence_test`: two one-sided tests (TOST) at a tolerance, from the same two scipy tests
  with the margin shifted in (the larger of the two one-sided p-values);
* :func:`holm`: Holm's step-down adjustment over a family of p-values. Written here because scipy
  has no Holm (``false_discovery_control`` is Benjamini–Hochberg) and statsmodels is not a
  dependency; it is six lines;
* :func:`seeds_needed`: how many seeds would decide a comparison if the observed mean and std held
  (80% power, one-sided level alpha: the smallest n whose t statistic reaches t_crit + z_0.8);
* :func:`paired_interval`: a bootstrap interval of the mean paired difference (``scipy.stats.bootstrap``).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as st

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 1000  # a seed estimate above this is reported as "> 1000"


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float | None
    std: float | None  # sample std, ddof = 1; None below 2 values
    median: float | None

    def centre(self, statistic: str) -> float | None:
        """The value compared with the paper: our mean, or our median where the paper's row is a median."""
        return self.median if statistic == "median" else self.mean


def summary(values: Sequence[float]) -> Summary:
    v = [float(x) for x in values]
    if not v:
        return Summary(0, None, None, None)
    return Summary(len(v), statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else None, statistics.median(v))


@dataclass(frozen=True)
class Reference:
    """The paper's printed figure: its value, its ± (None where none is printed) and its seed count."""
    value: float
    std: float | None
    n: int


def _two_sample(centre: float, s: Summary, ref: Reference, shift: float, alternative: str) -> float:
    """p of ``centre - shift`` against the paper's value (Welch where the paper has a ±, else one-sample)."""
    if ref.std is not None and ref.n >= 2:
        return float(st.ttest_ind_from_stats(centre - shift, s.std, s.n, ref.value, ref.std, ref.n,
                                             equal_var=False, alternative=alternative).pvalue)
    # One-sample t against the printed value: the spread is ours alone (scipy takes the values; we
    # shift them so that their mean is the compared centre, e.g. the median for a median row).
    return float(st.ttest_1samp(_values_with(centre - shift, s), ref.value, alternative=alternative).pvalue)


def _values_with(centre: float, s: Summary) -> np.ndarray:
    """n values with mean ``centre`` and sample std ``s.std``: what ttest_1samp needs from a summary."""
    z = np.zeros(s.n)
    z[0], z[1] = -1.0, 1.0  # sample std of (-1, 1, 0, ...) is sqrt(2/(n-1))
    z *= s.std / math.sqrt(2.0 / (s.n - 1))
    return z + centre


def _spread(s: Summary) -> Summary:
    """Identical seeds have std 0; a tiny floor keeps the t statistics finite (and decisive)."""
    return s if s.std else Summary(s.n, s.mean, 1e-12, s.median)


def difference_test(s: Summary, ref: Reference, statistic: str = "mean") -> float | None:
    """Two-sided p that ours (mean, or median for a median row) differs from the paper; None below 2 seeds."""
    if s.n < 2:
        return None
    s = _spread(s)
    return _two_sample(s.centre(statistic), s, ref, 0.0, "two-sided")


def equivalence_test(s: Summary, ref: Reference, tol: float, statistic: str = "mean") -> float | None:
    """TOST p that ours lies within ± ``tol`` of the paper (small p: equivalent); None below 2 seeds."""
    if s.n < 2:
        return None
    s = _spread(s)
    c = s.centre(statistic)
    lower = _two_sample(c, s, ref, -tol, "greater")  # H0: ours - paper <= -tol
    upper = _two_sample(c, s, ref, tol, "less")  # H0: ours - paper >= +tol
    return max(lower, upper)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None), in the input order."""
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for k, i in enumerate(idx):
        running = max(running, min(1.0, (m - k) * float(pvalues[i])))
        out[i] = running
    return out


def seeds_needed(diff: float, std: float | None, tol: float, ref: Reference | None = None,
                 alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Seeds that would decide the comparison at 80% power if the observed difference and std held.

    Inside the tolerance: seeds to show equivalence (margin ``tol - |diff|``); outside: seeds to show
    the difference (margin ``|diff|``). The paper's spread, where printed, adds its fixed variance
    ``ref.std^2 / ref.n``. None when there is no spread to extrapolate from.
    """
    if std is None:
        return None
    margin = tol - abs(diff) if abs(diff) < tol else abs(diff)
    if margin <= 0:
        return None
    ref_var = (ref.std ** 2 / ref.n) if ref is not None and ref.std is not None and ref.n else 0.0
    z = st.norm.ppf(power)
    for n in range(2, MAX_SEEDS + 1):
        se = math.sqrt(std ** 2 / n + ref_var)
        if se == 0 or margin / se >= st.t.ppf(1 - alpha, n - 1) + z:
            return n
    return MAX_SEEDS + 1


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


def paired_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95,
                    seed: int = 0) -> Interval | None:
    """Bootstrap (BCa, falling back to percentile) interval of mean(a - b) over paired seeds; None below 2 pairs."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) < 2:
        return None
    if np.allclose(d, d[0]):  # no spread: the interval is the point
        return Interval(float(d.mean()), float(d[0]), float(d[0]), len(d))
    res = None
    for method in ("BCa", "percentile"):
        try:
            res = st.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=9999, method=method,
                               random_state=np.random.default_rng(seed))
        except Exception:  # noqa: BLE001 - BCa is undefined for some tiny samples; percentile then
            continue
        if np.isfinite(res.confidence_interval.low) and np.isfinite(res.confidence_interval.high):
            break
    if res is None:  # neither method gave an interval
        return None
    ci = res.confidence_interval
    return Interval(float(d.mean()), float(ci.low), float(ci.high), len(d))
