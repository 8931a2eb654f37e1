"""What the A/B gate says it could see is what it catches: the power claim checked by
simulation, as tests/unit/test_compare.py does for separate runs."""

import numpy as np

from harness.suite.stats import gate_paired


def test_the_ab_shift_it_claims_it_could_see_is_caught():
    """8 block pairs with somewhat heavy tails (Student t, 10 df): at the
    shift each compare says it could see, 95 in 100 compares catch it (>= 90 allowed for the
    draw). With the spread estimated from the 8 pairs alone, this caught fewer."""
    rng = np.random.default_rng(7)
    caught = 0
    for _ in range(100):
        _, (claim,) = gate_paired([list(rng.standard_t(10, 8) * 60.0)], 100, 0.01)
        shifted = list(rng.standard_t(10, 8) * 60.0 + claim.detectable_us)
        caught += gate_paired([shifted], 100, 0.01)[1][0].regression
    assert caught >= 90, caught
