"""Statistics of the real DSG17 sample that the synthetic generator reproduces (shares, rates, quantiles).

Rates are listen rates (`is_listened` means) of the real train sample; shares are row shares.
"""

from __future__ import annotations

import numpy as np

NOV_2016 = 1_477_958_400  # 2016-11-01 00:00 UTC
DAY = 86_400

# Quantiles of the real rows-per-user distribution (user_row_counts.csv, 19,918 users), levels -> rows.
ROWS_LEVELS: np.ndarray = np.r_[
    np.linspace(0.0, 0.9, 19), 0.925, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 1.0
]
ROWS_VALUES: np.ndarray = np.r_[
    1.0, 9, 22, 35, 49, 66, 85, 107, 134, 164, 197, 238, 288, 343, 410, 495, 606, 742, 946,
    1109, 1345, 1659, 1944, 2436, 2987, 3718, 4181, 6317,
]  # fmt: skip
# Platform family row shares; platform name given the family (real cross-tab).
FAMILY_P = np.array([6_041_392, 1_101_269, 416_173]) / 7_558_834
NAME1_GIVEN_FAMILY = np.array([0.214, 0.0, 0.292])  # family 1 is always name 2
# Release years: inverse-CDF table matching the real sample's quantiles.
YEAR_LEVELS = np.array([0.0, 0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0])
YEAR_VALUES = np.array([1955.0, 1980.0, 1998.0, 2003.0, 2010.0, 2014.0, 2016.0, 2016.83])  # 2016.83: Nov 1
AGE_P = np.array([7.6, 6.8, 7.6, 7.7, 6.6, 7.2, 7.3, 7.9, 8.5, 8.0, 7.6, 7.9, 9.3])  # ages 18..30
# Contexts and their listen rates in the real train sample, per listen type (rest: small tail).
CTX_OTHER = np.array([0, 2, 3, 9, 8, 10, 11, 12, 15, 17, 16, 19, 14, 18])
CTX_OTHER_P: np.ndarray = np.array(
    [0.611, 0.204, 0.083, 0.0147, 0.0145, 0.0139, 0.0127, 0.0101, 0.0042, 0.0036]
)
CTX_OTHER_P = np.r_[CTX_OTHER_P, np.full(4, (1 - CTX_OTHER_P.sum()) / 4)]
CTX_OTHER_RATE = np.array([0.688, 0.762, 0.713, 0.752, 0.894, 0.95, 0.905, 0.727] + [0.72] * 6)
CTX_FLOW = np.array([1, 4, 5, 7, 6, 13, 20, 23, 24, 30])
CTX_FLOW_P: np.ndarray = np.array([0.716, 0.089, 0.068, 0.041, 0.041, 0.023, 0.007, 0.0066, 0.005])
CTX_FLOW_P = np.r_[CTX_FLOW_P, 1 - CTX_FLOW_P.sum()]
CTX_FLOW_RATE = np.array([0.574, 0.726, 0.534, 0.96, 0.586, 0.534, 0.58, 0.58, 0.6, 0.6])
TEST_CTX = np.array([1, 5, 20, 23])
TEST_CTX_P = np.array([16167, 3312, 251, 188]) / 19918
# Session starts per hour of day (UTC) and the hourly listen-rate offsets, from the real sample.
HOUR_P = np.array(
    [20, 13, 10, 7, 8, 14, 34, 45, 44, 51, 56, 57, 56, 58, 60, 63, 73, 76, 64, 49, 46, 39, 31, 28],
    dtype=float,
)
HOUR_P /= HOUR_P.sum()
HOUR_RATE: np.ndarray = np.r_[
    0.678, 0.713, 0.765, 0.801, 0.766, 0.707, 0.66, 0.665, 0.685, 0.712, 0.716, 0.692,
    0.69, 0.722, 0.731, 0.708, 0.664, 0.655, 0.67, 0.682, 0.684, 0.676, 0.683, 0.67,
]  # fmt: skip
