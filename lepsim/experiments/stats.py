"""Means and Student-t confidence intervals across replications (seeds)."""
from __future__ import annotations

import math

import numpy as np


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, half width, sample standard deviation, n) of the finite ``values``.

    The half width is ``t_{(1+level)/2, n-1} · s / √n`` (Student's t, ``s`` the sample
    standard deviation with ``n - 1`` degrees of freedom): NaN with fewer than two values,
    0 when every value is the same (up to a relative 1e-12: float rounding)."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    n = int(len(a))
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    m = float(a.mean())
    if n == 1:
        return m, math.nan, math.nan, 1
    # values equal but for rounding (e.g. a sum of the same prices in another order): no spread
    s = 0.0 if float(np.ptp(a)) <= 1e-12 * max(1.0, abs(m)) else float(a.std(ddof=1))
    from scipy import stats as _st  # imported on use: scipy.stats costs ~0.3 s at import

    half = float(_st.t.ppf(0.5 + level / 2.0, n - 1)) * s / math.sqrt(n) if s > 0 else 0.0
    return m, half, s, n
