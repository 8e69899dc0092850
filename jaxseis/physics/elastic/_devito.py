"""Devito equations of isotropic velocity-stress elasticity (`jaxseis.Elastic`), Virieux's
staggered grid, with an exact discrete adjoint and Born/imaging operators.

Fields (plain Devito functions; the staggering is a convention of the stencils): normal stresses
`t_dd` at the nodes `i`, velocity `v_d` at the half node `i + 1/2` along `d` (stored at index `i`),
shear stresses `t_de` (`d < e`) at half nodes along `d` and `e`. `Dp_d` is the forward half-cell
first derivative (value at `i + 1/2` stored at `i`: Devito's `Derivative(f, d, x0=d + h/2)`) and
`Dm_d` the backward one (`x0 = d - h/2`); with the same weights, on the finite grid with a zero
halo, `Dm_d = -Dp_d^T` exactly. With them the divergence of the stress `G` and the strain rate `E`

    (G S)_d = Dp_d t_dd + sum_{e != d} Dm_e t_de,     e_dd = Dm_d v_d,  e_de = Dp_e v_d + Dp_d v_e

satisfy `E = -G^T`. Coefficients (host side, `coefficients`): buoyancy `b_d` on the velocity nodes
(`b_d[i] = (1/rho[i] + 1/rho[i+1]) / 2`, the last cell keeps its own),
`lam = rho (vp^2 - 2 vs^2)` and `mu = rho vs^2` at the nodes, `mu_de` on the shear nodes (mean of
the four surrounding `mu`, so a fluid cell `vs = 0` gives `mu = 0` and no special case). `C` is
the isotropic stiffness (`t_dd = lam tr(e) + 2 mu e_dd`, `t_de = mu_de e_de`), symmetric.

Time stepping (Devito index `k` holds level `k`; levels 1 are the zero initial state; `time_order=1`
circular buffers), with the damping layer as time-centred factors `a = (1 - g) / (1 + g)`,
`c = 1 / (1 + g)`, `g = kappa h_min damp` (pointwise, `kappa = KAPPA`; time-centred damping keeps
the undamped stability limit), on the velocities and on the stresses (`a_S`, `c_S`: the same
factors). Measured: boundary reflections about 0.5 % of the data with `nbl = 20`; over thousands of
steps a small static stress builds up slowly (linearly, about 1e-3 of the peak amplitude per
1000 steps in a homogeneous solid); damping the velocities only removes that drift but reflects
about 2-5 % and worsens the conditioning of the float64 dot tests to ~1e-10.

    V[k+1] = a V[k] + c dt B G S[k]       (+ force source)
    S[k+1] = a_S S[k] + c_S dt C E V[k+1] (+ explosive source)
    data[k] = R_v V[k] + R_s S[k]

Adjoint (the transpose of that recursion step by step; `W_k` is the full cotangent of `V[k+1]`,
Devito index `k` of the adjoint fields holds the cotangents of level `k + 1`):

    W_k    = Vh[k+1] - dt G (c_S C Sh[k+1])                     (aux field `w_d`)
    Vh[k]  = a W_k + R_v^T data[k]
    Sh[k]  = a_S Sh[k+1] - dt E (B c W_k) + R_s^T data[k]
    src^T  = W_k (force) or Sh[k+1] (explosive), times dt / cell volume

Born (the exact derivative of the update in `b_d`, `lam`, `mu`, `mu_de`):

    dV[k+1] = a dV[k] + c dt (B G dS[k] + dB G S[k])
    dS[k+1] = a_S dS[k] + c_S dt (C E dV[k+1] + dC E V[k+1])

Imaging (the transpose of the Born source; at reverse step `k` it reads the saved `S[k]`,
`V[k+1]` and the adjoint `W_k`, `Sh[k+1]`):

    g_b_d  = sum_k dt c W_k,d (G S[k])_d
    g_lam  = sum_k dt c_S tr(Sh[k+1]) tr(E V[k+1])
    g_mu   = sum_k dt c_S 2 sum_d Sh[k+1]_dd (E V[k+1])_dd
    g_mu_de = sum_k dt c_S Sh[k+1]_de (E V[k+1])_de

(with a free surface the traces and the normal sums carry the surface mask `p` of `C`, below)
Free surface (`free_surface=True`; the solver pads one ghost row above the first depth sample
`fs`, no damping on top). The traction-free surface is the normal-stress row `fs` itself (the
"H" position of Kristek et al. 2002), so a fluid surface is where the acoustic physics puts its
zero-pressure surface. It is a half cell (the energy norm of summation by parts), and everything
stays a linear map of the coefficients plus two fixed masks, so the recursion above, its
transpose and the Born/imaging operators keep their form (`surface_coefficients`):

- vacuum above: every coefficient of the rows above `fs` is zero, and so are those of the half
  row `fs - 1/2` (`b_z` of its `v_z` nodes, `mu_dz` of its `t_dz` nodes: zero shear traction);
- the surface row holds half a cell of mass and stiffness. The stored stresses there are half
  the physical ones (`S~ = S / 2`): the horizontal velocities get the buoyancy `2 b_d` (half the
  mass) and the stiffness is halved, `mu / 2`, horizontal shear moduli `mu_de / 2`;
- `t_zz = 0` on the surface row and the horizontal normal stresses use the stiffness that
  eliminates `e_zz` under it: with the mask `sm` (1 on row `fs`) and `p = (1, .., 1, 1 - sm)`
  the normal block is `C = lam p p^T + 2 mu diag(p)` (symmetric; `_C`), and the surface row's
  `lam` coefficient is `lam mu / (lam + 2 mu)`, half of `lam' = 2 mu lam / (lam + 2 mu)`, so
  `t_xx = lam' (e_xx + e_yy) + 2 mu e_xx` (2D: `4 mu (lam + mu) / (lam + 2 mu) e_xx`). A fluid
  cell (`mu = 0`) on the surface has `t_xx = t_zz = 0`: zero pressure. Gradients: `transpose`
  maps the images back (the factors 2 and 1/2, the vacuum rows dropped) and differentiates
  `lam mu / (lam + 2 mu)` (`2 mu^2 / M^2` in `lam`, `lam^2 / M^2` in `mu`, `M = lam + 2 mu`);
- depth derivatives (2D and 3D): the staggered derivative of the space order written as
  `Dp_z = P D2p` with `D2p` the two-point half-cell difference and `P = sum_m a_m L^m`
  (`series_coefficients`), `L` the three-point second difference on the half-cell lattice;
  with the surface the lattice is cut at the surface row (`L_w`, edge weights `w` = 0 on the
  surface row and above, 1 below: the coefficient `wcut`), and `Dm_z = -Dp_z^T = D2m P`. Away
  from the surface this is the usual stencil; near it it is the image method (`t_zz` odd, `v_z`
  and the shear stresses' lattice values even about the surface row), never reads the vacuum,
  and stays exactly transposed. The plain truncated stencils (reading the vacuum's zeros) are
  inconsistent at the surface (first-order eigenfrequencies in 1D model problems, against
  3rd/4th order for the cut lattice). In 3D the data of a y-invariant model with a line
  source equal the 2D data (relative L2 3e-8; the truncated stencils: 6e-2). (The 3D surface
  had kept the truncated stencils because its dot tests failed, 0.08-1.8: the weights were
  named `wz`, the name of the 3D adjoint's auxiliary field `w_z`, and the Context returned the
  one Function for both, so the adjoint sweep overwrote the lattice weights with `W_z`.
  `Context` now refuses a name registered with two roles.);
- sources and receivers: loads on nodes that are no degrees of freedom are dropped (`t_zz` of
  the surface row, the vacuum `v_z` nodes; a point force's share on a vacuum `v_z` node goes to
  its image `v_z(fs + 1/2)`, and `vz` receivers read that image there); a point force on a
  surface-row velocity counts twice (half the mass), a distributed stress source half (stored
  stresses); `p` receivers read the physical stress (twice the stored one on the surface row).

The energy `V^T B^-1 V + S~^T C^-1 S~` (over the nodes with non-zero coefficients) stays
positive, which keeps the scheme stable; the Gershgorin `critical_dt` uses the same
coefficients, masks and depth operators (`z_matrices`). Measured (tests/test_elastic.py): the
Rayleigh speed (vp 2, vs 1, h 10/5/2.5 m) +1.4/+0.63/+0.23 % from trace lags (the discrete
dispersion relation's phase velocity +0.86/+0.28/+0.075 %: second order); with `vs = 0`
everywhere the pressure matches `VariableDensityAcoustic`'s free-surface data (correlation
0.9995; in 3D 0.9992 on a small grid, where the truncated depth stencils give 0.9992 as well:
a fluid surface hardly tells them apart, the y-invariant 3D-vs-2D check above does). The former
surface on the half row `fs - 1/2` ("W") gave -2.9/-0.61/-0.19 % and, with `vs = 0`, a
correlation of 0.968 with the acoustic data (its surface was h/2 higher).

Parameter gradients: `vp`, `vs`, `rho` by the chain rule through `lam`, `mu`, `b = 1/rho` and
the transposes of the averages (`transpose`, on the host). Dot tests hold to ~1e-15 in float64
(tests/test_elastic.py; 2D and 3D, with and without the free surface).
"""

from __future__ import annotations

import itertools as it

import numpy as np
from devito import Derivative, Eq, Inc

from ...devito._kernel import Kernel
from . import _staggered_weights

#: damping strength per step: g = KAPPA * h_min * damp (damp: the solver's profile, 1/m)
KAPPA = 0.1


def _half(b, axis):
    """b_d[i] = (b[i] + b[i+1]) / 2 along `axis`, the last cell keeps b[n-1]."""
    b = np.moveaxis(np.asarray(b, dtype=np.float64), axis, 0)
    out = b.copy()
    out[:-1] = 0.5 * (b[:-1] + b[1:])
    return np.moveaxis(out, 0, axis)


def _half_T(g, axis):
    """Transpose of `_half`."""
    g = np.moveaxis(np.asarray(g, dtype=np.float64), axis, 0)
    out = np.zeros_like(g)
    out[:-1] += 0.5 * g[:-1]
    out[1:] += 0.5 * g[:-1]
    out[-1] += g[-1]
    return np.moveaxis(out, 0, axis)


def _quarter(mu, a1, a2):
    return _half(_half(mu, a1), a2)


def _quarter_T(g, a1, a2):
    return _half_T(_half_T(g, a2), a1)


def series_coefficients(space_order):
    """`a_m` with `D = sum_m a_m L^m D_2` (`D_2`: the two-point half-cell difference, `L`: the
    three-point second difference on the half-cell lattice) equal to the staggered first
    derivative of `space_order` (Devito's weights): the symbols give
    `sum_j c_j sin((2j - 1) s) = sin(s) sum_m a_m (-4 sin(s)^2)^m`."""
    k = space_order // 2
    c = _staggered_weights(space_order)
    smp = np.linspace(0.2, 1.4, k)
    lhs = np.sin(np.outer(smp, 2 * np.arange(1, k + 1) - 1)) @ c / np.sin(smp)
    mat = (-4 * np.sin(smp)[:, None] ** 2) ** np.arange(k)[None, :]
    return np.linalg.solve(mat, lhs)


def surface_weights(nz, fs):
    """The edge weights `w` of the half-cell lattice (at the nodes): 0 on the surface row and
    above (the lattice is cut there), 1 below."""
    w = np.zeros(nz)
    w[fs + 1:] = 1
    return w


def z_matrices(nz, h, space_order, fs):
    """Dense matrices of the depth derivatives used with a free surface: `Zp` (nodes -> half
    nodes, the value at `k + 1/2` stored at `k`) and `Zm = -Zp^T` (half nodes -> nodes), on a
    depth axis of `nz` samples with a zero halo (for the stability bound and the tests)."""
    a = series_coefficients(space_order)
    w = surface_weights(nz, fs)
    dp2 = (np.eye(nz, k=1) - np.eye(nz)) / h
    lw = np.zeros((nz, nz))
    for j in range(nz):
        if j + 1 < nz:
            lw[j, j + 1] += w[j + 1]
            lw[j, j] -= w[j + 1]
        if j >= 1:
            lw[j, j - 1] += w[j]
            lw[j, j] -= w[j]
    P, Lm = np.zeros((nz, nz)), np.eye(nz)
    for am in a:
        P += am * Lm
        Lm = Lm @ lw
    zp = P @ dp2
    return zp, -zp.T


def surface_lambda(lam, mu):
    """The surface row's `lam` coefficient `lam mu / (lam + 2 mu)`: half of the stiffness
    `lam' = 2 mu lam / (lam + 2 mu)` that eliminates `e_zz` under `t_zz = 0` (the half cell)."""
    return lam * mu / (lam + 2 * mu)


def surface_lambda_derivatives(lam, mu):
    """`d surface_lambda / d lam`, `d surface_lambda / d mu`."""
    m2 = (lam + 2 * mu) ** 2
    return 2 * mu**2 / m2, lam**2 / m2


def surface_coefficients(b, lam, mu, fs, names=None, lam_surface=None):
    """Coefficients from `b = 1/rho`, `lam`, `mu` (arrays, depth last): `b_d` (`_half` along `d`),
    `lam`, `mu`, `mu_de` (`_quarter`). With a free surface at the normal-stress row `fs` (the
    first depth sample; see the module docstring) the surface row is a half cell: the stresses
    stored there are half the physical ones, so its stiffness is halved (`mu / 2`, the horizontal
    shear moduli `mu_de / 2`, and `lam` becomes `lam_surface`, by default
    `surface_lambda(lam, mu)`, half of `lam'`) and the buoyancy of its horizontal velocities
    doubled; every coefficient above the surface is zero (vacuum: the `v_z` and `t_dz` nodes of
    the half row `fs - 1/2` included), and `"sm"` is the surface-row mask (1 on row `fs`). Linear
    in `(b, lam, mu, lam_surface)` (with `lam_surface` given, as `linearize` does); returned keyed
    by `names = (dim names, shear names, pairs)` or, without names, by axis (`("b", a)`, `"lam"`,
    `"mu"`, `("mu", i, j)`, `"sm"`)."""
    nd = np.ndim(b)
    pairs = list(it.combinations(range(nd), 2))
    bs = [_half(b, a) for a in range(nd)]
    shear = [_quarter(mu, i, j) for i, j in pairs]
    lam, mu = np.array(lam, dtype=np.float64), np.array(mu, dtype=np.float64)
    sm = None
    if fs is not None:
        if lam_surface is None:
            lam_surface = surface_lambda(lam[..., fs], mu[..., fs])
        lam[..., fs] = lam_surface
        mu[..., fs] *= 0.5
        for a in range(nd - 1):
            bs[a][..., fs] *= 2
        for (i, j), arr in zip(pairs, shear):
            if j != nd - 1:  # horizontal shear stresses live on the surface row
                arr[..., fs] *= 0.5
        for arr in bs + shear + [lam, mu]:
            arr[..., :fs] = 0
        sm = np.zeros(np.shape(b))
        sm[..., fs] = 1
    if names is None:
        out = {("b", a): v for a, v in enumerate(bs)}
        out.update({("mu",) + p: v for p, v in zip(pairs, shear)})
    else:
        dn, shear_names, _ = names
        out = {f"b_{n}": v for n, v in zip(dn, bs)}
        out.update(dict(zip(shear_names, shear)))
    out["lam"], out["mu"] = lam, mu
    if sm is not None:
        out["sm"] = sm
    return out


class ElasticKernel(Kernel):
    """Isotropic velocity-stress elasticity (see the module docstring)."""

    parameters = ("vp", "vs", "rho")
    component_axis = True

    @classmethod
    def ghost_rows(cls, space_order):
        """One vacuum row above the surface: it holds the `v_z` and `t_dz` nodes of the half row
        `fs - 1/2` (zero coefficients; the stencils read zeros beyond it, the vacuum's value)."""
        return 1

    def __init__(self, ctx):
        super().__init__(ctx)
        self.dims = list(ctx.grid.dimensions)
        nd = len(self.dims)
        self.source = ctx.options.get("source", "explosive")
        self.record = tuple(ctx.options.get("record", ("p",)))
        self.dn = [d.name for d in self.dims]
        # public axis names (components "vx", "vz", sources "fx", "fz"): depth is the last axis
        self.axes = ["x", "z"] if nd == 2 else ["x", "y", "z"]
        self.pairs = list(it.combinations(range(nd), 2))
        self.shear_names = [f"mu_{self.dn[i]}{self.dn[j]}" for i, j in self.pairs]
        self.names = [f"b_{n}" for n in self.dn] + ["lam", "mu"] + self.shear_names
        self.c = {n: ctx.coefficient(n) for n in self.names}
        self.dc = {n: ctx.perturbation(n) for n in self.names}
        self.g = {n: ctx.gradient(n) for n in self.names}
        # free surface: the surface-row mask (a fixed coefficient, neither perturbed nor imaged)
        self.sm = ctx.coefficient("sm") if ctx.fs is not None else None
        # and the cut of the half-cell lattice for the depth derivatives (`_zp`, `_zm`), 2D and
        # 3D. Not named "wz": in 3D that is the adjoint's auxiliary `w_z` (`self.w`), and the
        # Context returned the coefficient for it, so the adjoint overwrote the lattice weights
        self.wcut = ctx.coefficient("wcut") if ctx.fs is not None else None
        self.series = series_coefficients(ctx.space_order)
        # state: velocities and stresses, first order in time
        self.vnames = [f"v{n}" for n in self.dn]
        self.tnames = [f"t{n}{n}" for n in self.dn] + [f"t{self.dn[i]}{self.dn[j]}"
                                                       for i, j in self.pairs]
        self.v = [ctx.state(n, time_order=1) for n in self.vnames]
        self.t = [ctx.state(n, time_order=1) for n in self.tnames]
        self.dv = [ctx.born_state("d" + n, time_order=1) for n in self.vnames]
        self.dt_ = [ctx.born_state("d" + n, time_order=1) for n in self.tnames]
        self.vh = [ctx.adjoint_state(n + "_a", time_order=1) for n in self.vnames]
        self.th = [ctx.adjoint_state(n + "_a", time_order=1) for n in self.tnames]
        self.w = [ctx.auxiliary(f"w{n}") for n in self.dn]
        self.saved = tuple(self.vnames + self.tnames)
        self.n_subsampled = len(self.saved)
        self.rec = {}
        spacing = ctx.grid.spacing_map
        self.h = [float(spacing[d.spacing]) for d in self.dims]
        for comp in self.record:
            self.rec[comp] = ctx.receiver("rec_" + comp)
            if comp != "p":
                ctx.stagger("rec_" + comp, self._offset(comp[1:]))
        if self.source != "explosive":
            for name in ("src", "srca"):
                ctx.stagger(name, self._offset(self.source[1:]))

    def _offset(self, axis_name):
        a = self.axes.index(axis_name)
        return [0.5 * h if i == a else 0.0 for i, h in enumerate(self.h)]

    # ------------------------------------------------------------------ host-side maps
    def _lame(self, model):
        vp, vs, rho = (np.asarray(model[k], dtype=np.float64) for k in ("vp", "vs", "rho"))
        return vp, vs, rho, rho * (vp**2 - 2 * vs**2), rho * vs**2

    def _maps(self, b, lam, mu, lam_surface=None):
        """The coefficients (on the padded grid; linear in `(b, lam, mu, lam_surface)`)."""
        return surface_coefficients(b, lam, mu, self.ctx.fs, lam_surface=lam_surface,
                                    names=(self.dn, self.shear_names, self.pairs))

    def coefficients(self, model):
        _, _, rho, lam, mu = self._lame(model)
        out = self._maps(1.0 / rho, lam, mu)
        if self.wcut is not None:
            w = surface_weights(lam.shape[-1], self.ctx.fs)
            out["wcut"] = np.broadcast_to(w, lam.shape).copy()
        return out

    def linearize(self, model, dmodel):
        vp, vs, rho, lam, mu = self._lame(model)
        dvp, dvs, drho = (np.asarray(dmodel[k], dtype=np.float64) for k in ("vp", "vs", "rho"))
        dlam = drho * (vp**2 - 2 * vs**2) + rho * (2 * vp * dvp - 4 * vs * dvs)
        dmu = drho * vs**2 + 2 * rho * vs * dvs
        dls = None
        fs = self.ctx.fs
        if fs is not None:  # the surface row's lam mu / (lam + 2 mu), linearised
            d_l, d_m = surface_lambda_derivatives(lam[..., fs], mu[..., fs])
            dls = d_l * dlam[..., fs] + d_m * dmu[..., fs]
        out = self._maps(-drho / rho**2, dlam, dmu, lam_surface=dls)
        out.pop("sm", None)
        return out

    def transpose(self, model, grads):
        vp, vs, rho, lam, mu = self._lame(model)
        g = {k: np.array(v, dtype=np.float64) for k, v in grads.items()
             if k not in ("sm", "wcut")}
        fs, nd = self.ctx.fs, len(self.dn)
        if fs is not None:  # transpose of surface_coefficients' surface rows
            for v in g.values():
                v[..., :fs] = 0
            for n in self.dn[:-1]:
                g[f"b_{n}"][..., fs] *= 2
            for (i, j), n in zip(self.pairs, self.shear_names):
                if j != nd - 1:
                    g[n][..., fs] *= 0.5
            g["mu"][..., fs] *= 0.5
            g_ls = g["lam"][..., fs].copy()
            g["lam"][..., fs] = 0
        gb = sum(_half_T(g[f"b_{n}"], a) for a, n in enumerate(self.dn))
        gmu = g["mu"] + sum(_quarter_T(g[n], i, j) for (i, j), n in zip(self.pairs,
                                                                          self.shear_names))
        glam = g["lam"]
        if fs is not None:
            d_l, d_m = surface_lambda_derivatives(lam[..., fs], mu[..., fs])
            glam[..., fs] += d_l * g_ls
            gmu[..., fs] += d_m * g_ls
        return {"vp": glam * 2 * rho * vp,
                "vs": -4 * rho * vs * glam + 2 * rho * vs * gmu,
                "rho": glam * (vp**2 - 2 * vs**2) + gmu * vs**2 - gb / rho**2}

    def needs(self, wrt):
        out = []
        if wrt:
            out.append("lam")
        if "vs" in wrt or "rho" in wrt:
            out += ["mu"] + self.shear_names
        if "rho" in wrt:
            out += [f"b_{n}" for n in self.dn]
        return tuple(out)

    # ------------------------------------------------------------------ stencils
    def _dp(self, f, a):
        d = self.dims[a]
        if self.wcut is not None and a == len(self.dims) - 1:
            return self._zp(f)
        return Derivative(f, d, x0=d + d.spacing / 2, fd_order=self.ctx.space_order)

    def _dm(self, f, a):
        d = self.dims[a]
        if self.wcut is not None and a == len(self.dims) - 1:
            return self._zm(f)
        return Derivative(f, d, x0=d - d.spacing / 2, fd_order=self.ctx.space_order)

    # depth derivatives with a free surface: `Zp = P D_2`, `Zm = -Zp^T = D_2m P` with the
    # symmetric `P = sum_m a_m L_w^m` on the half-cell lattice, `L_w` its second difference with
    # the edge weights `self.wcut` (cut at the surface row): the staggered
    # derivative of the space order away from the surface, the image method (odd `t_zz`, even
    # `v_z` about the surface row) near it, exactly transposed (see the module docstring)
    def _shift(self, e, k):
        z = self.dims[-1]
        return e.subs(z, z + k)

    def _lw(self, g):
        w = self.wcut
        return (self._shift(w, 1) * (self._shift(g, 1) - g)
                - w * (g - self._shift(g, -1)))

    def _P(self, g):
        out, cur = float(self.series[0]) * g, g
        for am in self.series[1:]:
            cur = self._lw(cur)
            out = out + float(am) * cur
        return out

    def _zp(self, f):
        h = self.dims[-1].spacing
        return self._P((self._shift(f, 1) - f) / h)

    def _zm(self, g):
        h = self.dims[-1].spacing
        pg = self._P(g)
        return (pg - self._shift(pg, -1)) / h

    def _normal(self, tlist):
        return tlist[:len(self.dims)]

    def _shear(self, tlist, a, b):
        """The shear component (a, b) of a stress-like list (a != b)."""
        i, j = min(a, b), max(a, b)
        return tlist[len(self.dims) + self.pairs.index((i, j))]

    def _G(self, tlist, a):
        """(G S)_a for a list of stress-like expressions."""
        out = self._dp(tlist[a], a)
        for e in range(len(self.dims)):
            if e != a:
                out += self._dm(self._shear(tlist, a, e), e)
        return out

    def _E(self, vlist):
        """Strain-rate-like list (normal then shear) of a list of velocity-like expressions."""
        normal = [self._dm(vlist[a], a) for a in range(len(self.dims))]
        shear = [self._dp(vlist[i], j) + self._dp(vlist[j], i) for i, j in self.pairs]
        return normal + shear

    def _p(self):
        """The normal components' surface masks `p_d`: 1, except `p_z = 1 - sm` (`t_zz = 0` and
        no `e_zz` on the surface row)."""
        nd = len(self.dims)
        return [1] * (nd - 1) + [1 if self.sm is None else 1 - self.sm]

    def _C(self, strain, coef):
        """Stiffness times a strain-like list, with coefficient functions `coef`; on the surface
        row `C = lam p p^T + 2 mu diag(p)` on the normal components (symmetric)."""
        nd = len(self.dims)
        p = self._p()
        tr = sum(p[a] * strain[a] for a in range(nd))
        normal = [p[a] * (coef["lam"] * tr + 2 * coef["mu"] * strain[a]) for a in range(nd)]
        shear = [coef[n] * s for n, s in zip(self.shear_names, strain[nd:])]
        return normal + shear

    def _factors(self):
        """Damping factors `(a_V, c_V, a_S, c_S)` of the velocity and stress updates (the same
        profile for both; kept apart so that either may be changed)."""
        g = KAPPA * min(self.h) * self.ctx.damp
        a, c = (1 - g) / (1 + g), 1 / (1 + g)
        return a, c, a, c

    # ------------------------------------------------------------------ source/receiver weights
    def _inject_weight(self, i, point):
        """Factor of a source's injection into state component `i` (velocity `i < nd` of a force
        along axis `i`, or normal stress `i - nd` of the explosive source), at the target node.
        Loads on nodes that are not degrees of freedom are dropped (`t_zz` on the surface row,
        the vacuum `v_z` half row `fs - 1/2`: a point force's share there goes to its image,
        `_vz_image`); a point load on a surface-row node acts on its half cell (`V`: half the
        mass, weight 2; the stored stresses there are the physical ones times 1/2, so a point
        load is unchanged and a distributed one halved)."""
        nd = len(self.dims)
        if self.sm is None:
            return 1
        sm, z = self.sm, self.dims[-1]
        if i < nd:
            if i == nd - 1:
                return 1 - sm.subs(z, z + 1)
            return 1 + sm if point else 1
        return self._p()[i - nd] * (1 if point else 1 - sm / 2)

    def _vz_image(self, f):
        """The vacuum `v_z` node `fs - 1/2` read as its even image `v_z(fs + 1/2)` (the image
        method's `v_z` is even about the surface row): the extra term of `f` at the vacuum node,
        `sm(z + 1) f(z + 1)`, or None without a free surface. Receivers of `vz` above the first
        `v_z` node and point forces `fz` there use it (transposed: injected into `z + 1`)."""
        if self.sm is None:
            return None
        return self._shift(self.sm, 1) * self._shift(f, 1)

    def _p_scale(self):
        """Physical stress over stored stress at the nodes (2 on the surface row)."""
        return 1 if self.sm is None else 1 + self.sm

    # ------------------------------------------------------------------ equations
    def _src_expr(self):
        ctx = self.ctx
        return ctx.src * ctx.dt / ctx.cell_volume

    def forward_eqs(self, source, save, born, sub):
        ctx = self.ctx
        nd = len(self.dims)
        dt = ctx.dt
        a, c, aS, cS = self._factors()
        V = [ctx.saved(f) if save else f for f in self.v]
        S = [ctx.saved(f) if save else f for f in self.t]
        cf = self.c
        ext = ctx.wts * ctx.wav if source == "extended" else 0
        force = None if self.source == "explosive" else self.axes.index(self.source[1:])
        eqs = []
        for i, v in enumerate(V):
            rhs = a * v + c * dt * cf[f"b_{self.dn[i]}"] * self._G(S, i)
            if i == force:
                rhs += dt * ext * self._inject_weight(i, False)
            eqs.append(Eq(v.forward, rhs))
        if source == "point" and force is not None:
            eqs += ctx.src.inject(field=V[force].forward,
                                  expr=self._src_expr() * self._inject_weight(force, True))
            if force == nd - 1 and self.sm is not None:  # the vacuum node's share: its image
                eqs += ctx.src.inject(field=self._shift(V[force].forward, 1),
                                      expr=self._src_expr() * self._shift(self.sm, 1))
        Vf = [v.forward for v in V]
        stress = self._C(self._E(Vf), cf)
        for i, s in enumerate(S):
            rhs = aS * s + cS * dt * stress[i]
            if force is None and i < nd:
                rhs -= dt * ext * self._inject_weight(nd + i, False)
            eqs.append(Eq(s.forward, rhs))
        if source == "point" and force is None:
            for i, s in enumerate(S[:nd]):
                eqs += ctx.src.inject(field=s.forward,
                                      expr=-self._src_expr() * self._inject_weight(nd + i, True))
        if born:
            dV, dS, dc = self.dv, self.dt_, self.dc
            for i, v in enumerate(dV):
                n = f"b_{self.dn[i]}"
                eqs.append(Eq(v.forward, a * v + c * dt * (cf[n] * self._G(dS, i)
                                                           + dc[n] * self._G(S, i))))
            dstress = self._C(self._E([v.forward for v in dV]), cf)
            bstress = self._C(self._E(Vf), dc)
            for i, s in enumerate(dS):
                eqs.append(Eq(s.forward, aS * s + cS * dt * (dstress[i] + bstress[i])))
            eqs += self._record(dV, dS)
        else:
            eqs += self._record(V, S)
        if sub:
            for v in V:
                eqs.append(Eq(ctx.subsampled(v.name + "sub", sub), v.forward))
            for s in S:
                eqs.append(Eq(ctx.subsampled(s.name + "sub", sub), s))
        name = "ElBorn" if born else ("ElForwardExt" if source == "extended" else "ElForward")
        return eqs, name + ("Save" if save else "") + (f"Sub{sub}" if sub else "")

    def _record(self, V, S):
        nd = len(self.dims)
        eqs = []
        for comp, rec in self.rec.items():
            if comp == "p":
                eqs += rec.interpolate(expr=-self._p_scale() * sum(S[:nd]) / nd)
            else:
                a = self.axes.index(comp[1:])
                img = self._vz_image(V[a]) if a == nd - 1 else None
                eqs += rec.interpolate(expr=V[a] if img is None else V[a] + img)
        return eqs

    def adjoint_eqs(self, srca, ext, grad, sub):
        ctx = self.ctx
        nd = len(self.dims)
        dt = ctx.dt
        a, c, aS, cS = self._factors()
        cf = self.c
        vh, th, w = self.vh, self.th, self.w
        force = None if self.source == "explosive" else self.axes.index(self.source[1:])
        T = [cS * x for x in self._C(th, cf)]
        eqs = [Eq(w[i], vh[i] - dt * self._G(T, i)) for i in range(nd)]
        eqs += [Eq(vh[i].backward, a * w[i]) for i in range(nd)]
        bw = [cf[f"b_{self.dn[i]}"] * c * w[i] for i in range(nd)]
        strain = self._E(bw)
        eqs += [Eq(s.backward, aS * s - dt * strain[i]) for i, s in enumerate(th)]
        for comp, rec in self.rec.items():
            if comp == "p":
                for s in th[:nd]:
                    eqs += rec.inject(field=s.backward, expr=-self._p_scale() * rec / nd)
            else:
                a = self.axes.index(comp[1:])
                eqs += rec.inject(field=vh[a].backward, expr=rec)
                if a == nd - 1 and self.sm is not None:
                    eqs += rec.inject(field=self._shift(vh[a].backward, 1),
                                      expr=rec * self._shift(self.sm, 1))
        # the source-side cotangent: W_k (force) or Sh[k+1] (explosive)
        def back(point):
            if force is not None:
                out = w[force] * self._inject_weight(force, point)
                if point and force == nd - 1 and self.sm is not None:
                    out += self._vz_image(w[force])
                return out
            return -sum(self._inject_weight(nd + i, point) * th[i] for i in range(nd))

        if srca:
            eqs += ctx.srca.interpolate(expr=back(True) * dt / ctx.cell_volume)
        if ext:
            eqs += [Inc(ctx.wadj, dt * ctx.wav * back(False))]
        if grad:
            if sub:
                V1 = [ctx.subsampled(n + "sub", sub) for n in self.vnames]
                S0 = [ctx.subsampled(n + "sub", sub) for n in self.tnames]
                kw = {"implicit_dims": (ctx.tsub(sub),)}
            else:
                V1 = [ctx.saved(f).forward for f in self.v]
                S0 = [ctx.saved(f) for f in self.t]
                kw = {}
            wt, wtS = (sub or 1) * dt * c, (sub or 1) * dt * cS
            g = self.g
            for i, n in enumerate(self.dn):
                if f"b_{n}" in grad:
                    eqs.append(Inc(g[f"b_{n}"], wt * w[i] * self._G(S0, i), **kw))
            e = self._E(V1)
            p = self._p()
            if "lam" in grad:
                eqs.append(Inc(g["lam"], wtS * sum(p[i] * th[i] for i in range(nd))
                               * sum(p[i] * e[i] for i in range(nd)), **kw))
            if "mu" in grad:
                eqs.append(Inc(g["mu"], wtS * 2 * sum(p[i] * th[i] * e[i] for i in range(nd)),
                               **kw))
            for k, n in enumerate(self.shear_names):
                if n in grad:
                    eqs.append(Inc(g[n], wtS * th[nd + k] * e[nd + k], **kw))
        name = ("ElAdjoint" + ("Src" if srca else "") + ("Ext" if ext else "")
                + ("Grad" + "".join(n[0] for n in grad) if grad else ""))
        return eqs, name + (f"Sub{sub}" if sub else "")
