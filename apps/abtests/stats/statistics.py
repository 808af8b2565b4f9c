"""Per-arm sufficient statistics and the variances built from them.

Every formula mirrors gbstats ``gbstats/models/statistics.py`` (GrowthBook),
so results can be checked against it number for number. Inputs are validated
(n >= 2) before these are built, so gbstats' n <= 1 guards are left out; that
keeps the arithmetic plain enough to run on numpy arrays in simulations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class SampleMean:
    """A metric averaged per unit: n units, the sum of values and of their squares.

    Variance is the sample variance with ddof 1, as gbstats ``SampleMeanStatistic``.
    """

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        return (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)

    @property
    def unadjusted_mean(self) -> float:
        return self.mean


@dataclass(frozen=True)
class Proportion:
    """A 0/1 metric: n units of which ``sum`` converted.

    Variance is p(1 - p), as gbstats ``ProportionStatistic`` (no small-sample correction).
    """

    n: int
    sum: float

    @property
    def sum_squares(self) -> float:
        return self.sum

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        return self.mean * (1 - self.mean)

    @property
    def unadjusted_mean(self) -> float:
        return self.mean


Base = SampleMean | Proportion


@dataclass(frozen=True)
class Ratio:
    """A ratio of two per-unit sums (e.g. revenue per session), analysed per unit.

    Delta-method variance of sum(m)/sum(d), as gbstats ``RatioStatistic``.
    """

    numerator: Base
    denominator: Base
    sum_product: float

    @property
    def n(self) -> int:
        return self.numerator.n

    @property
    def mean(self) -> float:
        if self.denominator.sum == 0:
            return 0.0
        return self.numerator.sum / self.denominator.sum

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def covariance(self) -> float:
        if self.n <= 1:
            return 0.0
        return (self.sum_product - self.numerator.sum * self.denominator.sum / self.n) / (self.n - 1)

    @property
    def variance(self) -> float:
        m, d = self.numerator, self.denominator
        if d.mean == 0 or self.n <= 1:
            return 0.0
        return m.variance / d.mean**2 - 2 * self.covariance * m.mean / d.mean**3 + m.mean**2 * d.variance / d.mean**4


@dataclass(frozen=True)
class RegressionAdjusted:
    """A metric with its pre-period covariate, for CUPED (Deng et al. 2013).

    Adjusted mean = post mean - theta * pre mean, adjusted variance
    = var(post) + theta^2 var(pre) - 2 theta cov(post, pre); as gbstats
    ``RegressionAdjustedStatistic``. ``theta`` is set per comparison by
    :func:`with_shared_theta`.
    """

    post: Base
    pre: Base
    sum_product: float
    theta: float = 0.0

    @property
    def n(self) -> int:
        return self.post.n

    @property
    def mean(self) -> float:
        return self.post.mean - self.theta * self.pre.mean

    @property
    def unadjusted_mean(self) -> float:
        return self.post.mean

    @property
    def covariance(self) -> float:
        if self.n <= 1:
            return 0.0
        return (self.sum_product - self.post.sum * self.pre.sum / self.n) / (self.n - 1)

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        return self.post.variance + self.theta**2 * self.pre.variance - 2 * self.theta * self.covariance


Statistic = SampleMean | Proportion | Ratio | RegressionAdjusted


def _joint(a: Base, b: Base) -> Base:
    if isinstance(a, Proportion):
        return Proportion(n=a.n + b.n, sum=a.sum + b.sum)
    return SampleMean(n=a.n + b.n, sum=a.sum + b.sum, sum_squares=a.sum_squares + b.sum_squares)


def cuped_theta(a: RegressionAdjusted, b: RegressionAdjusted) -> float:
    """CUPED's theta = cov(post, pre) / var(pre) pooled over both arms (Deng et al. 2013).

    Pooled exactly as gbstats ``compute_theta`` (models/statistics.py); 0 when the
    pooled pre- or post-period variance is 0.
    """
    post, pre = _joint(a.post, b.post), _joint(a.pre, b.pre)
    if pre.variance == 0 or post.variance == 0:
        return 0.0
    joint = RegressionAdjusted(post=post, pre=pre, sum_product=a.sum_product + b.sum_product)
    return joint.covariance / pre.variance


def with_shared_theta(a: Statistic, b: Statistic) -> tuple[Statistic, Statistic]:
    """Give a CUPED pair the theta pooled over both arms (gbstats ``BaseABTest.__init__``).

    With theta 0 (no pre- or post-period variance) the pair falls back to the
    unadjusted statistics, as gbstats does.
    """
    if not (isinstance(a, RegressionAdjusted) and isinstance(b, RegressionAdjusted)):
        return a, b
    theta = cuped_theta(a, b)
    if theta == 0:
        return a.post, b.post
    return replace(a, theta=theta), replace(b, theta=theta)
