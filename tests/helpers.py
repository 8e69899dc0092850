"""Helpers the test files share: random fields and wavelets that keep dot products well
conditioned, and the Taylor-rate checks."""

import numpy as np


def smooth_random(rng, shape, sigma_cells=2.0):
    """Zero-mean, unit-std random field low-passed with a Gaussian of `sigma_cells` (FFT filter):
    band-limited, so float32 cancellation in the dot products is not what limits the test."""
    x = rng.standard_normal(shape)
    k = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    filt = np.exp(-2.0 * np.pi**2 * sigma_cells**2 * sum(ki**2 for ki in k))
    y = np.real(np.fft.ifftn(np.fft.fftn(x) * filt))
    return y / y.std()


def bandlimited_wavelets(rng, wavelet, nsrc):
    """Random source time functions `(nt, nsrc)` with the amplitude spectrum of `wavelet`."""
    nt = wavelet.shape[0]
    spec = np.abs(np.fft.rfft(np.asarray(wavelet, dtype=np.float64)))
    noise = np.fft.rfft(rng.standard_normal((nt, nsrc)), axis=0)
    q = np.fft.irfft(noise * spec[:, None], n=nt, axis=0)
    return q / np.abs(q).max()


def data_like(d, rng):
    """A data-space vector for dot tests: the shot record `d` plus as much white noise (each at
    unit norm). With white noise alone <F x, y> can come out near 1e-3 ||F x|| ||y||, so float32
    round-off (~1e-7 of ||F x|| ||y||) reads as a ~1e-4 mismatch; a y with the data's own band and
    moveout keeps the products away from cancellation."""
    d = np.asarray(d, np.float64)
    noise = rng.standard_normal(d.shape)
    return d / np.linalg.norm(d) + noise / np.linalg.norm(noise)


def report_taylor(name, res):
    """Print a `TaylorResult` with the remainders' ratios per halving."""
    print(f"\n[taylor {name}] {res!r}")
    ratios1 = res.first_order[:-1] / res.first_order[1:]
    ratios2 = res.second_order[:-1] / res.second_order[1:]
    print(f"  r1 ratios per halving {np.round(ratios1, 3).tolist()}")
    print(f"  r2 ratios per halving {np.round(ratios2, 3).tolist()}")


def check_rates(res, rate1_tol=0.1, rate2_tol=0.15):
    """First-order remainders shrink ~2x and second-order ones ~4x per halving, and the gradient
    term cancels the linear part (r2 << r1 at the smallest step)."""
    assert np.all(res.first_order > 0) and np.all(res.second_order > 0)
    assert abs(res.rate1 - 1.0) <= rate1_tol, res
    assert abs(res.rate2 - 2.0) <= rate2_tol, res
    assert res.second_order[-1] < 0.1 * res.first_order[-1], res


def check_dot(pair, p, tol, srcs, perturbation, label):
    """Dot test of one linear pair of a physics on the case `p` (dict with `op`, `model`, `rec`,
    `src`, `wavelet`): `"forward/adjoint"` in the wavelets of the sources `srcs`,
    `"born/born_adjoint"` in the perturbation `perturbation(p, rng)`, `"extended"` in a smooth
    source density. Prints the mismatch and asserts it is <= `tol` (and the products nonzero)."""
    from jaxseis.testing import dot_test

    op, model, rec, src, w = p["op"], p["model"], p["rec"], p["src"], p["wavelet"]
    if pair == "forward/adjoint":
        rng = np.random.default_rng(3)
        x = bandlimited_wavelets(rng, w, srcs.shape[0]).astype(op.dtype)
        f = lambda q: op.forward(model, q, srcs, rec)  # noqa: E731
        fa = lambda d: op.adjoint(model, d, srcs, rec)  # noqa: E731
    elif pair == "born/born_adjoint":
        rng = np.random.default_rng(4)
        x = perturbation(p, rng)
        f = lambda dm: op.born(model, dm, w, src, rec)  # noqa: E731
        fa = lambda d: op.born_adjoint(model, d, w, src, rec)  # noqa: E731
    elif pair == "extended":
        rng = np.random.default_rng(5)
        x = smooth_random(rng, op.grid.shape).astype(op.dtype)
        f = lambda wt: op.forward_extended(model, wt, w, rec)  # noqa: E731
        fa = lambda d: op.adjoint_extended(model, d, w, rec)  # noqa: E731
    else:
        raise ValueError(pair)
    y = rng.standard_normal(op.data_shape(rec.shape[0])).astype(op.dtype)
    err, lhs, _ = dot_test(f, fa, x, y)
    print(f"\n[{label} dot {pair}] rel={err:.3e}")
    assert lhs != 0.0 and err <= tol
