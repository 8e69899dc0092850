"""Bad input: every case raises a `ValueError` that is also a `js.JaxseisError`, with a message that
opens with the argument's name in backticks and says what was expected; value errors are raised
before any PDE is solved, also under `jax.jit` (where the same text reaches the user), and leave the
operator working. Plus the dispersion warning.
"""

import re
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from jaxseis import _checks
from jaxseis.devito import _solver

NX, NZ = 41, 31


class _CountSolves:
    """Counts every PDE solve (`Solver.forward` and `Solver.adjoint`)."""

    def __init__(self, monkeypatch):
        self.n = 0
        lock = threading.Lock()
        for name in ("forward", "adjoint"):
            orig = getattr(_solver.Solver, name)

            def wrapper(solver, *args, _orig=orig, **kw):
                with lock:
                    self.n += 1
                return _orig(solver, *args, **kw)

            monkeypatch.setattr(_solver.Solver, name, wrapper)


@pytest.fixture
def solves(monkeypatch):
    return _CountSolves(monkeypatch)


@pytest.fixture(scope="module")
def p(problem):
    d = dict(problem)
    op = d["op"]
    d["data0"] = np.asarray(op.forward(d["m"], d["wavelet"], d["src"], d["rec"]))
    return d


def check_message(err, name, *fragments):
    """`err` is a ValueError and a JaxseisError whose message opens with `name`, has `fragments`."""
    msg = str(err)
    assert isinstance(err, ValueError), f"{type(err).__name__} is not a ValueError: {msg}"
    assert isinstance(err, js.JaxseisError), f"{type(err).__name__} is not a JaxseisError: {msg}"
    tick = f"`{name}`"
    assert tick in msg, f"message does not name {tick}: {msg}"
    assert msg.index(tick) < 40, f"message does not open with {tick}: {msg}"
    for frag in fragments:
        assert frag in msg, f"message lacks {frag!r}: {msg}"
    return msg


def assert_still_works(p):
    op = p["op"]
    again = np.asarray(op.forward(p["m"], p["wavelet"], p["src"], p["rec"]))
    np.testing.assert_array_equal(again, p["data0"])


# ---------------------------------------------------------------------------------- shapes
def _shape_cases():
    nt, nrec = 401, 21
    ones = lambda *s: np.ones(s, np.float32)  # noqa: E731
    F = lambda p, **kw: p["op"].forward(  # noqa: E731
        kw.get("m", p["m"]), kw.get("w", p["wavelet"]), kw.get("src", p["src"]),
        kw.get("rec", p["rec"]))
    A = lambda p, **kw: p["op"].adjoint(  # noqa: E731
        p["m"], kw.get("data", ones(nt, nrec)), p["src"], p["rec"])
    B = lambda p, **kw: p["op"].born(  # noqa: E731
        kw.get("m0", p["m"]), kw.get("dm", ones(NX, NZ)), p["wavelet"], p["src"], p["rec"])
    BA = lambda p, **kw: p["op"].born_adjoint(  # noqa: E731
        p["m"], kw.get("data", ones(nt, nrec)), p["wavelet"], p["src"], p["rec"])
    FE = lambda p, **kw: p["op"].forward_extended(  # noqa: E731
        p["m"], kw.get("weights", ones(NX, NZ)), kw.get("w", p["wavelet"]), p["rec"])
    AE = lambda p, **kw: p["op"].adjoint_extended(  # noqa: E731
        p["m"], kw.get("data", ones(nt, nrec)), p["wavelet"], p["rec"])
    return {
        "m 2D wrong": (lambda p: F(p, m=ones(NX, NZ - 1)), "m", ["(41, 31)", "(41, 30)"]),
        "m 3D batch": (lambda p: F(p, m=ones(2, NX, NZ)), "m", ["(41, 31)", "vmap"]),
        "m 1D": (lambda p: F(p, m=ones(NX * NZ)), "m", ["(41, 31)"]),
        "src 1D": (lambda p: F(p, src=np.array([200.0, 25.0])), "src", ["(nsrc, 2)"]),
        "src 3 coords": (lambda p: F(p, src=np.array([[200.0, 25.0, 1.0]])), "src", ["(nsrc, 2)"]),
        "src 3D batch": (lambda p: F(p, src=np.ones((3, 1, 2))), "src", ["(nsrc, 2)", "vmap"]),
        "src empty": (lambda p: F(p, src=np.ones((0, 2))), "src", ["(nsrc, 2)"]),
        "rec 1D": (lambda p: F(p, rec=np.ones(21)), "rec", ["(nrec, 2)"]),
        "rec 3 coords": (lambda p: F(p, rec=np.ones((21, 3))), "rec", ["(nrec, 2)"]),
        "wavelet too long": (lambda p: F(p, w=ones(nt + 1)), "wavelet", ["401"]),
        "wavelet too short 2D": (lambda p: F(p, w=ones(nt - 1, 1)), "wavelet", ["401"]),
        "wavelet nsrc": (lambda p: F(p, w=ones(nt, 2)), "wavelet", ["(401, 1)"]),
        "wavelet 3D": (lambda p: F(p, w=ones(3, nt, 1)), "wavelet", ["401"]),
        "data nrec": (lambda p: A(p, data=ones(nt, nrec - 1)), "data", ["(401, 21)"]),
        "data nt": (lambda p: A(p, data=ones(nt - 1, nrec)), "data", ["(401, 21)"]),
        "data 1D": (lambda p: A(p, data=ones(nt * nrec)), "data", ["(401, 21)"]),
        "data born_adjoint": (lambda p: BA(p, data=ones(nrec, nt)), "data", ["(401, 21)"]),
        "data adjoint_extended": (lambda p: AE(p, data=ones(nt, 3)), "data", ["(401, 21)"]),
        "dm": (lambda p: B(p, dm=ones(NX, NZ + 1)), "dm", ["(41, 31)"]),
        "m0": (lambda p: B(p, m0=ones(NX - 1, NZ)), "m0", ["(41, 31)"]),
        "weights": (lambda p: FE(p, weights=ones(NX, NZ, 1)), "weights", ["(41, 31)"]),
        "extended wavelet 2D": (lambda p: FE(p, w=ones(nt, 1)), "wavelet", ["(401,)"]),
    }


SHAPE_CASES = _shape_cases()


@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_bad_shapes(p, solves, case):
    call, name, fragments = SHAPE_CASES[case]
    with pytest.raises(js.InvalidShape) as info:
        call(p)
    msg = check_message(info.value, name, *fragments)
    print(f"  {case}: {msg}")
    assert solves.n == 0


def test_bad_shape_under_jit_is_raised_at_trace_time(p, solves):
    op = p["op"]
    with pytest.raises(js.InvalidShape) as info:
        jax.jit(op.forward)(np.ones((NX, NZ - 1), np.float32), p["wavelet"], p["src"], p["rec"])
    check_message(info.value, "m", "(41, 31)")
    assert solves.n == 0


# ---------------------------------------------------------------------------------- values
def _with(x, idx, value):
    x = np.array(x, dtype=np.float32)
    x[idx] = value
    return x


def _value_cases():
    F = lambda p, **kw: p["op"].forward(  # noqa: E731
        kw.get("m", p["m"]), kw.get("w", p["wavelet"]), kw.get("src", p["src"]),
        kw.get("rec", p["rec"]))
    return {
        "m NaN": (lambda p: F(p, m=_with(p["m"], (3, 4), np.nan)), "m", ["finite"]),
        "m inf": (lambda p: F(p, m=_with(p["m"], (3, 4), np.inf)), "m", ["finite"]),
        "m -inf": (lambda p: F(p, m=_with(p["m"], (3, 4), -np.inf)), "m", ["finite"]),
        "m zero": (lambda p: F(p, m=_with(p["m"], (10, 4), 0.0)), "m", ["positive"]),
        "m negative": (lambda p: F(p, m=-np.asarray(p["m"])), "m", ["positive"]),
        "src outside x": (lambda p: F(p, src=np.array([[401.0, 25.0]])), "src",
                          ["outside", "[0, 400]"]),
        "src above z": (lambda p: F(p, src=np.array([[200.0, -5.0]])), "src",
                        ["outside", "[0, 300]"]),
        "src NaN": (lambda p: F(p, src=np.array([[np.nan, 25.0]])), "src", ["finite"]),
        "rec outside": (lambda p: F(p, rec=_with(p["rec"], (3, 1), 310.0)), "rec",
                        ["outside", "[0, 300]"]),
        "rec negative x": (lambda p: F(p, rec=_with(p["rec"], (0, 0), -1.0)), "rec",
                           ["outside", "[0, 400]"]),
        "wavelet NaN": (lambda p: F(p, w=_with(p["wavelet"], 10, np.nan)), "wavelet", ["finite"]),
        "data NaN": (lambda p: p["op"].adjoint(p["m"], _with(np.ones((401, 21)), (1, 1), np.nan),
                                               p["src"], p["rec"]), "data", ["finite"]),
        "dm inf": (lambda p: p["op"].born(p["m"], _with(np.zeros((NX, NZ)), (1, 1), np.inf),
                                          p["wavelet"], p["src"], p["rec"]), "dm", ["finite"]),
        "weights NaN": (lambda p: p["op"].forward_extended(
            p["m"], _with(np.zeros((NX, NZ)), (1, 1), np.nan), p["wavelet"], p["rec"]),
            "weights", ["finite"]),
    }


VALUE_CASES = _value_cases()


@pytest.mark.parametrize("case", list(VALUE_CASES))
def test_bad_values(p, solves, case):
    call, name, fragments = VALUE_CASES[case]
    with pytest.raises(js.InvalidArgument) as info:
        call(p)
    msg = check_message(info.value, name, *fragments)
    print(f"  {case}: {msg}")
    assert solves.n == 0, "a PDE was solved before the bad input was refused"
    assert_still_works(p)


def test_born_bad_m0_names_m0(p, solves):
    """`born` calls its model `m0`: a bad value there should be reported under that name."""
    op = p["op"]
    with pytest.raises(js.InvalidArgument) as info:
        op.born(_with(p["m"], (2, 2), np.nan), np.zeros((NX, NZ), np.float32), p["wavelet"],
                p["src"], p["rec"])
    check_message(info.value, "m0", "finite")
    assert solves.n == 0


def _numbers(msg):
    return [float(x) for x in re.findall(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", msg)]


def _assert_mentions(msg, value, rtol=1e-5):
    nums = _numbers(msg)
    assert any(abs(x - value) <= rtol * abs(value) for x in nums), (
        f"message does not give {value:.6g}: {msg}")


def test_unstable_dt_fast_model(p, solves):
    op, m = p["op"], p["m"]
    vfast = 10.0
    m_fast = _with(m, (20, 20), 1.0 / vfast**2)
    dtc = js.critical_dt(op.grid, vfast, op.space_order)
    assert dtc < op.time.dt
    with pytest.raises(js.UnstableTimeStep) as info:
        op.forward(m_fast, p["wavelet"], p["src"], p["rec"])
    msg = check_message(info.value, "dt", "stability")
    print(f"  {msg}\n  js.critical_dt = {dtc:.6g} ms")
    _assert_mentions(msg, dtc)
    assert solves.n == 0
    assert_still_works(p)


def test_unstable_dt_time_axis(p, solves):
    """A TimeAxis with dt above the limit for the (ordinary) model is refused, with the limit."""
    op, m = p["op"], p["m"]
    dtc = op.critical_dt(m)
    vmax = float(1.0 / np.sqrt(np.min(m)))
    assert dtc == pytest.approx(js.critical_dt(op.grid, vmax, op.space_order), rel=1e-6)
    time = js.TimeAxis(0.0, 400.0, 1.01 * dtc)
    op2 = js.Acoustic(op.grid, time, space_order=op.space_order, nbl=op.nbl)
    with pytest.raises(js.UnstableTimeStep) as info:
        op2.forward(m, js.ricker(time, 0.02), p["src"], p["rec"])
    msg = check_message(info.value, "dt", "stability")
    _assert_mentions(msg, dtc)
    assert solves.n == 0


# ---------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("kwargs,name,fragments", [
    (dict(shape=(41, 31), spacing=(0.0, 10.0)), "spacing", ["positive"]),
    (dict(shape=(41, 31), spacing=(10.0, -10.0)), "spacing", ["positive"]),
    (dict(shape=(41, 31), spacing=(10.0, 10.0, 10.0)), "spacing", ["2 entries"]),
    (dict(shape=(41, 31), spacing=(10.0, np.nan)), "spacing", ["finite"]),
    (dict(shape=(41, 31), spacing=10.0, origin=(0.0, 0.0, 0.0)), "origin", ["2 entries"]),
    (dict(shape=(41,), spacing=10.0), "shape", ["2 or 3"]),
    (dict(shape=(4, 4, 4, 4), spacing=10.0), "shape", ["2 or 3"]),
    (dict(shape=(41, 1), spacing=10.0), "shape", ["at least 2"]),
    (dict(shape=(41, 0), spacing=10.0), "shape", ["at least 2"]),
])
def test_bad_grid(kwargs, name, fragments):
    with pytest.raises(js.InvalidArgument) as info:
        js.Grid(**kwargs)
    print(f"  {info.value}")
    check_message(info.value, name, *fragments)


@pytest.mark.parametrize("args,name,fragments", [
    ((0.0, 400.0, 0.0), "dt", ["positive"]),
    ((0.0, 400.0, -1.0), "dt", ["positive"]),
    ((100.0, 50.0, 1.0), "tn", ["t0"]),
    ((0.0, np.inf, 1.0), "t0", ["finite"]),
])
def test_bad_time_axis(args, name, fragments):
    with pytest.raises(js.InvalidArgument) as info:
        js.TimeAxis(*args)
    print(f"  {info.value}")
    check_message(info.value, name, *fragments)


@pytest.mark.parametrize("kwargs,name,fragments", [
    (dict(space_order=3), "space_order", ["even"]),
    (dict(space_order=5), "space_order", ["even"]),
    (dict(space_order=0), "space_order", [">= 2"]),
    (dict(space_order=4.0), "space_order", ["even"]),
    (dict(nbl=-1), "nbl", ["non-negative"]),
    (dict(nbl=2.5), "nbl", ["integer"]),
    (dict(dtype=jnp.int32), "dtype", ["float32"]),
])
def test_bad_acoustic(problem, kwargs, name, fragments):
    op = problem["op"]
    with pytest.raises(js.InvalidArgument) as info:
        js.Acoustic(op.grid, op.time, **{"space_order": 4, "nbl": 10, **kwargs})
    print(f"  {info.value}")
    check_message(info.value, name, *fragments)


def test_bad_ricker_and_critical_dt(problem):
    op = problem["op"]
    for f0 in (0.0, -0.01, np.nan):
        with pytest.raises(js.InvalidArgument) as info:
            js.ricker(op.time, f0)
        check_message(info.value, "f0", "positive")
    for v in (0.0, -1.0, np.inf):
        with pytest.raises(js.InvalidArgument) as info:
            js.critical_dt(op.grid, v, 4)
        check_message(info.value, "vmax", "positive")


def test_type_errors_are_jaxseis_errors(problem):
    """`_errors.py`: every error a user can cause is a ValueError or TypeError *and* a
    JaxseisError, so `except js.JaxseisError` catches all of them."""
    op = problem["op"]
    cases = {
        "grid": lambda: js.Acoustic("not a grid", op.time),
        "time": lambda: js.Acoustic(op.grid, (0.0, 400.0, 1.0)),
        "m": lambda: op.forward(np.ones((NX, NZ), np.complex64), problem["wavelet"],
                                problem["src"], problem["rec"]),
    }
    not_ours = []
    for name, call in cases.items():
        with pytest.raises((TypeError, ValueError)) as info:
            call()
        print(f"  {name}: {type(info.value).__name__}: {info.value}")
        assert f"`{name}`" in str(info.value)
        if not isinstance(info.value, js.JaxseisError):
            not_ours.append(f"{type(info.value).__name__}: {info.value}")
    assert not not_ours, "not JaxseisErrors:\n" + "\n".join(not_ours)


# ---------------------------------------------------------------------------------- under jit
def _jit_cases(p):
    m, rec = p["m"], p["rec"]
    return {
        "m NaN": dict(m=_with(m, (5, 5), np.nan)),
        "fast model": dict(m=_with(m, (20, 20), 1.0 / 10.0**2)),
        "rec outside": dict(rec=_with(rec, (4, 0), 450.0)),
    }


@pytest.mark.parametrize("case", ["m NaN", "fast model", "rec outside"])
def test_value_errors_under_jit(p, solves, case):
    op = p["op"]
    kw = dict(m=p["m"], w=p["wavelet"], src=p["src"], rec=p["rec"])
    kw.update(_jit_cases(p)[case])
    with pytest.raises(ValueError) as eager:
        op.forward(kw["m"], kw["w"], kw["src"], kw["rec"])
    reason = str(eager.value)
    fwd = jax.jit(op.forward)
    with pytest.raises(Exception) as info:
        fwd(kw["m"], kw["w"], kw["src"], kw["rec"]).block_until_ready()
    text = str(info.value)
    print(f"  {case}: {type(info.value).__name__}; last line: {text.strip().splitlines()[-1]}")
    assert reason in text
    # the gradient path and a vmapped batch with one bad shot: same message, nothing solved
    loss = lambda m: jnp.sum(op.forward(m, kw["w"], kw["src"], kw["rec"]) ** 2)  # noqa: E731
    with pytest.raises(Exception) as info:
        jax.jit(jax.grad(loss))(kw["m"]).block_until_ready()
    assert reason in str(info.value)
    srcs = np.stack([p["src"], p["src"] + 50.0, p["src"] + 100.0])
    batched = jax.jit(jax.vmap(op.forward, in_axes=(0, None, 0, None)))
    ms = np.stack([p["m"], p["m"], kw["m"]])
    with pytest.raises(Exception) as info:
        batched(ms, kw["w"], srcs, kw["rec"]).block_until_ready()
    assert reason in str(info.value)
    assert solves.n == 0, "a PDE was solved before the bad input was refused"
    # the jitted function still works with good input, with the eager result
    np.testing.assert_array_equal(np.asarray(fwd(p["m"], p["wavelet"], p["src"], p["rec"])),
                                  p["data0"])
    assert_still_works(p)


def test_batch_is_validated_before_any_solve(p, solves):
    """Eager vmap: the third shot is bad; no shot of the batch is solved."""
    op = p["op"]
    srcs = np.array([[[100.0, 25.0]], [[200.0, 25.0]], [[500.0, 25.0]]])
    with pytest.raises(Exception) as info:
        jax.vmap(lambda s: op.forward(p["m"], p["wavelet"], s, p["rec"]))(srcs)
    assert "`src` position 0 is outside" in str(info.value)
    assert solves.n == 0


# ---------------------------------------------------------------------------------- warning
def test_dispersion_warning(p, monkeypatch):
    op, m = p["op"], p["m"]
    monkeypatch.setattr(_checks, "_warned", set())  # the warning is issued once per configuration
    f0 = 0.08  # 80 Hz: vmin 1.5 km/s / 0.08 kHz = 18.75 m, under 2 points per wavelength at 10 m
    w = js.ricker(op.time, f0)
    with pytest.warns(js.DispersionWarning) as rec:
        op.forward(m, w, p["src"], p["rec"])
    msg = str(rec[0].message)
    print(f"  {msg}")
    vmin = float(1.0 / np.sqrt(np.max(m)))
    ppw = _numbers(msg)[0]
    assert ppw == pytest.approx(vmin / f0 / 10.0, rel=0.1)
    assert ppw < 4


def test_no_dispersion_warning_for_fine_problem(p, monkeypatch):
    op = p["op"]
    monkeypatch.setattr(_checks, "_warned", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error", js.DispersionWarning)
        op.forward(p["m"], p["wavelet"], p["src"], p["rec"])
        jax.grad(lambda m: jnp.sum(op.forward(m, p["wavelet"], p["src"], p["rec"]) ** 2))(p["m"])


def test_jit_error_reads_our_message_first(tmp_path):
    """A bad value under jax.jit that ends a script: stderr opens with our message, JAX's callback
    traceback is not logged, and the stack dump of the XLA runtime is not shown."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "bad.py"
    script.write_text(
        "import sys\nimport numpy as np, jax\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from conftest import small_problem\n"
        "p = small_problem(); op = p['op']\n"
        "m = np.array(p['m']); m[3, 3] = np.nan\n"
        "jax.jit(op.forward)(m, p['wavelet'], p['src'], p['rec']).block_until_ready()\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300)
    print(out.stderr)
    assert out.returncode != 0
    first = out.stderr.strip().splitlines()[0]
    assert first.startswith("jaxseis.InvalidArgument") and "`m` must be finite" in first
    assert "CpuCallback" not in out.stderr and "pure_callback failed" not in out.stderr
    assert "bad.py" in out.stderr  # the user's own frames are still shown
