"""Equinox layers (`jaxseis.nn`): gradients of networks that contain wave physics.

The two examples of the issue are Taylor tests of a whole network (all parameters at once):

(a) `predict(x) = W @ born(x).ravel() + b` with an MSE loss: gradients w.r.t. `W`, `b` and `x = dm`;
(b) `conv -> ExtendedSourceForward(weights = conv output, m) -> conv` with `eqx.nn.Conv2d`:
    gradients w.r.t. `m` and both convolutions (kernels and biases).

As in test_gradient.py, the target comes from parameters moved along the test direction
(`p - A dp`), so the linear Taylor term dominates and the second-order remainder stays far above
float32 round-off. Then: the layers under `eqx.filter_jit` / `eqx.filter_vmap`, an optax loop, the
shot axis, and `eqx.filter_grad` over a network holding every layer type (constants are not leaves).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxseis as js
from jaxseis import nn
from helpers import check_rates as _check_rates, report_taylor
from jaxseis.testing import dot_test, taylor_test

A = 5.0  # the target's parameters are `p - A * dp` (example a; example b uses 2)
SRC3 = np.array([[[100.0, 25.0]], [[200.0, 25.0]], [[300.0, 25.0]]])  # (nshots=3, nsrc=1, 2) m


def bumps(op, centers, sigma=30.0):
    """Sum of Gaussian bumps (sigma in m) with signs alternating, peak 1, on the grid."""
    x = op.grid.coordinates(0)[:, None]
    z = op.grid.coordinates(1)[None, :]
    out = np.zeros(op.grid.shape)
    for i, (cx, cz) in enumerate(centers):
        out += (-0.7) ** i * np.exp(-((x - cx) ** 2 + (z - cz) ** 2) / (2 * sigma**2))
    return out.astype(np.float32)


def check_rates(res):
    _check_rates(res, rate1_tol=0.1, rate2_tol=0.15 * 2.0)


def tree_axpy(a, x, y):
    return jax.tree_util.tree_map(lambda u, v: a * u + v, x, y)


@pytest.fixture(scope="module")
def layers(problem):
    p = problem
    op = p["op"]
    return dict(
        fwd=nn.Forward(op, p["wavelet"], p["src"], p["rec"]),
        born=nn.Born(op, p["m"], p["wavelet"], p["src"], p["rec"]),
        born_adj=nn.BornAdjoint(op, p["m"], p["wavelet"], p["src"], p["rec"]),
        ext=nn.ExtendedSourceForward(op, p["wavelet"], p["rec"]),
        ext_adj=nn.ExtendedSourceAdjoint(op, p["wavelet"], p["rec"]),
    )


# ------------------------------------------------------------------------------- (a) Born + dense
def test_taylor_born_dense(problem, layers):
    """predict(x) = W @ born(x).ravel() + b, MSE loss; gradients w.r.t. W, b and x together."""
    op, born = problem["op"], layers["born"]
    rng = np.random.default_rng(3)
    x0 = bumps(op, [(130.0, 170.0), (280.0, 200.0)])
    scale = 1.0 / float(jnp.max(jnp.abs(born(x0))))  # data of x of order 1
    nout, ndata = 4, op.time.nt * problem["rec"].shape[0]
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    params = dict(W=f32(rng.standard_normal((nout, ndata)) / np.sqrt(ndata) * 10.0),
                  b=f32(rng.standard_normal(nout)), x=f32(scale * x0))
    # A small W step keeps the bilinear (h^2 in predict) part small next to the quadratic one.
    dparams = dict(W=f32(rng.standard_normal((nout, ndata)) / np.sqrt(ndata) * 1.0),
                   b=f32(0.3 * rng.standard_normal(nout)),
                   x=f32(0.3 * scale * bumps(op, [(200.0, 120.0), (120.0, 230.0)])))

    def predict(p):
        return p["W"] @ born(p["x"]).ravel() + p["b"]

    target = predict(tree_axpy(-A, dparams, params))

    def loss(p):
        return jnp.mean((predict(p) - target) ** 2)

    grads = jax.grad(loss)(params)
    assert all(float(jnp.linalg.norm(g)) > 0 for g in jax.tree_util.tree_leaves(grads))
    res = taylor_test(loss, params, dparams, h0=0.5, n=5, grad=grads)
    report_taylor("W @ born(x) + b, grads wrt W, b, x", res)
    check_rates(res)


# ------------------------------------------------------------------ (b) conv -> extended -> conv
def test_taylor_conv_extended_conv(problem, layers):
    """conv -> ExtendedSourceForward(weights, m) -> conv; gradients w.r.t. m and both convs."""
    op, ext = problem["op"], layers["ext"]
    nt, nrec = layers["ext"].data_shape
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    conv_in = eqx.nn.Conv2d(1, 1, 3, padding=1, key=k1)
    conv_out = eqx.nn.Conv2d(1, 1, (5, 3), padding=(2, 1), key=k2)
    z = jnp.asarray(bumps(op, [(200.0, 150.0), (120.0, 100.0), (300.0, 220.0)], sigma=40.0))[None]
    m0 = jnp.asarray(1.0 / (1.5 + 1.0 * op.grid.coordinates(1)[None, :] / 300.0
                            + 0.0 * op.grid.coordinates(0)[:, None]) ** 2, jnp.float32)
    params = (conv_in, conv_out, m0)
    # Direction: 10 % smooth bumps on m, 10 % random perturbations of every kernel and bias.
    dm = 0.1 * m0 * bumps(op, [(130.0, 170.0), (280.0, 200.0)])
    dconv_in = jax.tree_util.tree_map(
        lambda a: 0.1 * jax.random.normal(k3, a.shape, a.dtype) * jnp.std(a), conv_in)
    dconv_out = jax.tree_util.tree_map(
        lambda a: 0.1 * jax.random.normal(k4, a.shape, a.dtype) * jnp.std(a), conv_out)
    dparams = (dconv_in, dconv_out, dm)

    def net(p):
        c_in, c_out, m = p
        weights = c_in(z)[0]                  # (nx, nz) source density
        data = ext(weights, m)                # (nt, nrec)
        return c_out(data[None])[0]           # (nt, nrec)

    target = net(tree_axpy(-2.0, dparams, params))
    norm = float(jnp.mean(target**2))

    def loss(p):
        return jnp.mean((net(p) - target) ** 2) / norm

    grads = jax.grad(loss)(params)
    g_in, g_out, g_m = grads
    for g in (g_in.weight, g_in.bias, g_out.weight, g_out.bias, g_m):
        assert float(jnp.linalg.norm(g)) > 0
    assert g_m.shape == op.grid.shape and nt == op.time.nt and nrec == problem["rec"].shape[0]
    res = taylor_test(loss, params, dparams, h0=1.0, n=5, grad=grads)
    report_taylor("conv -> ExtendedSourceForward -> conv, grads wrt m and both convs", res)
    check_rates(res)


# ------------------------------------------------------------------------- constants, repr, T
def test_constants_are_not_leaves(problem, layers):
    for name, layer in layers.items():
        assert jax.tree_util.tree_leaves(layer) == [], name
        assert eqx.filter(layer, eqx.is_inexact_array) == layer  # nothing to filter out
        r = repr(layer)
        assert r.startswith(type(layer).__name__ + "(op=Acoustic(") and "rec=f32[21,2]" in r, r
    fwd = layers["fwd"]
    assert isinstance(fwd.src, np.ndarray) and fwd.src.shape == (1, 2)
    with pytest.raises(ValueError):
        fwd.src[0, 0] = 1.0  # read-only: a layer's constants cannot change behind its back
    assert fwd.data_shape == (problem["op"].time.nt, 21)
    assert "m0=f32[41,31]" in repr(layers["born"])


def test_layer_constants_must_be_concrete(problem):
    p = problem

    @jax.jit
    def build(w):
        return nn.Forward(p["op"], w, p["src"], p["rec"])(p["m"])

    with pytest.raises(TypeError, match="`wavelet` must be a concrete array"):
        build(jnp.asarray(p["wavelet"]))


def test_bad_shapes(problem, layers):
    p, op, nt = problem, problem["op"], problem["op"].time.nt
    with pytest.raises(js.InvalidShape, match="`wavelet` must have shape"):
        nn.Forward(op, p["wavelet"][:-1], p["src"], p["rec"])
    with pytest.raises(js.InvalidShape, match="`wavelet` must have shape"):
        nn.Forward(op, np.ones((2, nt)), SRC3, p["rec"])  # 2 wavelets for 3 shots
    with pytest.raises(js.InvalidShape, match="`src` must have shape"):
        nn.Forward(op, p["wavelet"], np.ones((3,)), p["rec"])
    with pytest.raises(js.InvalidShape, match="as many shots as `src`"):
        nn.Forward(op, p["wavelet"], SRC3, np.stack([p["rec"]] * 2))
    with pytest.raises(js.InvalidShape, match="`m0` must have the grid shape"):
        nn.Born(op, p["m"][:-1], p["wavelet"], p["src"], p["rec"])
    with pytest.raises(js.InvalidShape, match="`m` must have the grid shape"):
        layers["fwd"](p["m"][None])
    with pytest.raises(js.InvalidShape, match=r"`data` must have shape \(401, 21\)"):
        layers["born_adj"](np.zeros((nt, 20), np.float32))
    with pytest.raises(TypeError, match="jaxseis.Acoustic"):
        nn.Forward("op", p["wavelet"], p["src"], p["rec"])


def test_transposes_are_adjoint(problem, layers):
    """`Born.T` is `BornAdjoint` (and the extended pair): float32 dot tests."""
    rng = np.random.default_rng(5)
    op, m = problem["op"], problem["m"]
    dm = bumps(op, [(150.0, 150.0), (250.0, 200.0)])
    d = rng.standard_normal(layers["born"].data_shape).astype(np.float32)
    born = layers["born"]
    mismatch, lhs, rhs = dot_test(born, born.T, dm, d)
    print(f"\n[dot Born / Born.T float32] {mismatch:.2e} ({lhs:.6e} vs {rhs:.6e})")
    assert mismatch < 1e-4
    assert isinstance(born.T, nn.BornAdjoint) and born.T == layers["born_adj"]
    ext = layers["ext"]
    mismatch, lhs, rhs = dot_test(lambda w: ext(w, m), lambda y: ext.T(y, m), dm, d)
    print(f"[dot ExtendedSourceForward / .T float32] {mismatch:.2e}")
    assert mismatch < 1e-4


# ------------------------------------------------------------------------------ jit and vmap
def test_filter_jit_matches_eager_and_does_not_retrace(problem, layers):
    p = problem
    traces = []

    @eqx.filter_jit
    def apply(layer, m):
        traces.append(1)
        return layer(m)

    eager = layers["fwd"](p["m"])
    np.testing.assert_allclose(apply(layers["fwd"], p["m"]), eager, rtol=1e-5, atol=1e-7)
    # An identical layer built again hashes equal: same trace, no recompilation.
    again = nn.Forward(p["op"], np.array(p["wavelet"]), np.array(p["src"]), np.array(p["rec"]))
    apply(again, p["m"] * 1.0)
    assert len(traces) == 1
    # A different wavelet is a different layer: a new trace.
    apply(nn.Forward(p["op"], 2.0 * p["wavelet"], p["src"], p["rec"]), p["m"])
    assert len(traces) == 2
    dm = bumps(p["op"], [(200.0, 150.0)])
    np.testing.assert_allclose(eqx.filter_jit(lambda layer, x: layer(x))(layers["born"], dm),
                               layers["born"](dm), rtol=1e-5, atol=1e-7)


def test_filter_vmap_over_inputs(problem, layers):
    op = problem["op"]
    dms = jnp.stack([bumps(op, [(150.0, 150.0)]), bumps(op, [(250.0, 200.0)])])
    batched = eqx.filter_vmap(layers["born"])(dms)
    assert batched.shape == (2,) + layers["born"].data_shape
    for i in range(2):
        np.testing.assert_allclose(batched[i], layers["born"](dms[i]), rtol=1e-5, atol=1e-7)
    # Two models through the extended layer, with the weights shared (in_axes=None).
    ms = jnp.stack([problem["m"], 0.95 * problem["m"]])
    w = bumps(op, [(200.0, 100.0)])
    out = eqx.filter_vmap(lambda m: layers["ext"](w, m))(ms)
    np.testing.assert_allclose(out[1], layers["ext"](w, ms[1]), rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------------ shots
def test_shot_axis(problem):
    p, op = problem, problem["op"]
    nt = op.time.nt
    fwd3 = nn.Forward(op, p["wavelet"], SRC3, p["rec"])
    d3 = fwd3(p["m"])
    assert d3.shape == (3, nt, 21) == fwd3.data_shape
    for i in range(3):
        one = op.forward(p["m"], p["wavelet"], SRC3[i], p["rec"])
        np.testing.assert_allclose(d3[i], one, rtol=1e-5, atol=1e-7)
    # A wavelet per shot (nshots, nt): linear in the wavelet, so shot i scales by s[i].
    s = np.array([1.0, -2.0, 0.5], np.float32)
    d_w = nn.Forward(op, s[:, None] * p["wavelet"][None], SRC3, p["rec"])(p["m"])
    np.testing.assert_allclose(d_w, s[:, None, None] * d3, rtol=1e-4, atol=1e-6)
    # (nshots, nt, nsrc) and receivers per shot (nshots, nrec, ndim).
    w3 = np.broadcast_to(p["wavelet"][None, :, None], (3, nt, 1))
    recs = np.stack([p["rec"], p["rec"][::-1], p["rec"]])
    d_r = nn.Forward(op, w3, SRC3, recs)(p["m"])
    np.testing.assert_allclose(d_r[1], d3[1][:, ::-1], rtol=1e-5, atol=1e-7)
    # Born with shots, and its adjoint stacks the shots' images.
    born3 = nn.Born(op, p["m"], p["wavelet"], SRC3, p["rec"])
    dm = bumps(op, [(200.0, 150.0)])
    db = born3(dm)
    assert db.shape == (3, nt, 21)
    image = born3.T(db)
    assert image.shape == op.grid.shape
    singles = sum(nn.BornAdjoint(op, p["m"], p["wavelet"], SRC3[i], p["rec"])(db[i])
                  for i in range(3))
    np.testing.assert_allclose(image, singles, rtol=1e-4, atol=1e-6 * float(jnp.abs(image).max()))
    with pytest.raises(js.InvalidShape, match=r"\(3, 401, 21\)"):
        born3.T(db[0])
    # The FWI gradient of a multi-shot loss is the sum of the per-shot gradients.
    g3 = jax.grad(lambda m: 0.5 * jnp.sum(fwd3(m) ** 2))(jnp.asarray(p["m"]))
    g1 = sum(jax.grad(lambda m, i=i: 0.5 * jnp.sum(
        op.forward(m, p["wavelet"], SRC3[i], p["rec"]) ** 2))(jnp.asarray(p["m"]))
        for i in range(3))
    np.testing.assert_allclose(g3, g1, rtol=1e-4, atol=1e-5 * float(jnp.abs(g1).max()))


# -------------------------------------------------------------------------- networks, optax
class PhysicsNet(eqx.Module):
    """A network holding every layer type; its only trainable arrays are `dm`, `weights`, `gain`."""

    fwd: nn.Forward
    born: nn.Born
    born_adj: nn.BornAdjoint
    ext: nn.ExtendedSourceForward
    ext_adj: nn.ExtendedSourceAdjoint
    linear: eqx.nn.Linear
    dm: jax.Array
    weights: jax.Array

    def __call__(self):
        m = jnp.asarray(self.born.m0)                    # the background: a layer constant
        d_fwd = self.fwd(m + self.dm)                    # FWI gradient in dm
        d_born = self.born(self.dm)                      # Born: linear in dm
        image = self.born_adj(d_born)                    # migration of the Born data
        d_ext = self.ext(self.weights, m)                # extended source: gradient in weights
        back = self.ext_adj(d_ext, m)                    # and back to the grid
        feats = jnp.stack([jnp.sum(d_fwd**2), jnp.sum(image * self.dm),
                           jnp.sum(back * self.weights)])
        return self.linear(feats / (1.0 + jnp.abs(jax.lax.stop_gradient(feats))))


def test_filter_grad_over_network_with_every_layer(problem, layers):
    op = problem["op"]
    net = PhysicsNet(**layers, linear=eqx.nn.Linear(3, 2, key=jax.random.key(1)),
                     dm=jnp.asarray(0.01 * problem["m"] * bumps(op, [(200.0, 150.0)])),
                     weights=jnp.asarray(bumps(op, [(150.0, 100.0)])))
    trainable = jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array))
    assert len(trainable) == 4  # dm, weights, linear.weight, linear.bias: no layer constant

    @eqx.filter_jit
    @eqx.filter_grad
    def grad(net):
        return jnp.sum(net() ** 2)

    g = grad(net)  # would raise NotImplementedError if any layer constant were differentiated
    for name in layers:
        assert jax.tree_util.tree_leaves(getattr(g, name)) == [], name
    leaves = jax.tree_util.tree_leaves(g)
    assert len(leaves) == 4
    for leaf in leaves:
        assert np.all(np.isfinite(leaf)) and float(jnp.linalg.norm(leaf)) > 0


def test_optax_adam_loop_decreases_loss(problem, layers):
    """Three Adam steps fitting dm to Born data: the loss decreases every step."""
    op, born = problem["op"], layers["born"]
    dm_true = 0.05 * problem["m"] * bumps(op, [(200.0, 150.0)])
    d_obs = born(dm_true)
    model = dict(dm=jnp.zeros(op.grid.shape, jnp.float32))
    optimizer = optax.adam(0.02 * float(np.abs(dm_true).max()))
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, opt_state):
        loss, grads = eqx.filter_value_and_grad(
            lambda mdl: 0.5 * jnp.sum((born(mdl["dm"]) - d_obs) ** 2))(model)
        updates, opt_state = optimizer.update(grads, opt_state, model)
        return eqx.apply_updates(model, updates), opt_state, loss

    losses = []
    for _ in range(3):
        model, opt_state, loss = step(model, opt_state)
        losses.append(float(loss))
    final = float(0.5 * jnp.sum((born(model["dm"]) - d_obs) ** 2))
    print(f"\n[optax adam on Born] losses {losses} -> {final}")
    assert losses[0] > losses[1] > losses[2] > final
