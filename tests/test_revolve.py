"""Revolve schedules: valid, within the snapshot budget, and as cheap as the brute-force optimum."""

from functools import lru_cache

import pytest

from jaxseis._revolve import beta, n_advances, schedule


@lru_cache(None)
def brute_force(n_steps, c):
    """Fewest advances to reverse `n_steps` steps with `c` checkpoints (initial state included), by
    dynamic programming over the first checkpoint position."""
    if n_steps <= 1:
        return 0
    if c == 1:
        return n_steps * (n_steps - 1) // 2
    return min(m + brute_force(n_steps - m, c - 1) + brute_force(m, c) for m in range(1, n_steps))


def run(actions, n_steps):
    """Execute a schedule symbolically; return (advances, peak stored snapshots, reversal order)."""
    current, stored, peak, adv, order = 0, set(), 0, 0, []
    for a in actions:
        if a[0] == "advance":
            i, j = a[1], a[2]
            assert i == current or i in stored or i == 0, a
            assert j > i
            adv += j - i
            current = j
        elif a[0] == "store":
            assert a[1] == current and a[1] not in stored, a
            stored.add(a[1])
            peak = max(peak, len(stored))
        elif a[0] == "drop":
            stored.remove(a[1])
        elif a[0] == "reverse":
            i = a[1]
            assert i == current or i in stored or i == 0, a
            order.append(i)
            current = None
        else:
            raise AssertionError(a)
    assert not stored
    return adv, peak, order


@pytest.mark.parametrize("n_snapshots", [0, 1, 2, 3, 5, 8])
def test_schedule_is_valid_and_optimal(n_snapshots):
    for n_steps in range(1, 90):
        adv, peak, order = run(schedule(n_steps, n_snapshots), n_steps)
        assert order == list(range(n_steps - 1, -1, -1))
        assert peak <= n_snapshots
        assert adv == n_advances(n_steps, n_snapshots + 1) == brute_force(n_steps, n_snapshots + 1)


def test_enough_snapshots_is_one_sweep():
    # With a checkpoint for every step, one forward sweep and no recomputation beyond the reversals.
    adv, peak, _ = run(schedule(40, 39), 40)
    assert adv == 39 and peak == 39


def test_each_step_recomputed_at_most_r_times():
    # Binomial property: with c checkpoints, beta(c, r) steps are reversed advancing any step at
    # most r times (here r = 3, c = 4: 35 steps).
    c, r = 4, 3
    n_steps = beta(c, r)
    counts = [0] * n_steps
    for a in schedule(n_steps, c - 1):
        if a[0] == "advance":
            for k in range(a[1], a[2]):
                counts[k] += 1
    assert n_steps == 35 and max(counts) == r


def test_many_checkpoints_and_steps():
    # No recursion limit: thousands of blocks and checkpoints.
    adv, peak, order = run(schedule(3000, 2500), 3000)
    assert adv == n_advances(3000, 2501) and peak == 2500 and order == list(range(2999, -1, -1))
    adv, peak, _ = run(schedule(2000, 3), 2000)
    assert adv == n_advances(2000, 4) and peak == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_steps"):
        schedule(0, 3)
    with pytest.raises(ValueError, match="n_snapshots"):
        schedule(5, -1)
