"""jaxseis.plot: figures are made, with physical units on the axes and the stated orientation."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import jaxseis as js  # noqa: E402
from jaxseis import models, plot  # noqa: E402

GRID = js.Grid((41, 31), (10.0, 10.0))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _colorbar_label(fig):
    return [a.get_ylabel() for a in fig.axes if a.get_label() == "<colorbar>"]


def test_plot_model_axes_units_orientation(tmp_path):
    vp = models.layered(GRID, (1.5, 2.5), depths=(150.0,))
    src = np.array([[200.0, 20.0]])
    rec = np.stack([np.linspace(0, 400, 11), np.full(11, 10.0)], axis=1)
    fig = plot.plot_model(vp, GRID, title="layers", src=src, rec=rec)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "x (m)" and ax.get_ylabel() == "Depth (m)"
    assert ax.get_title() == "layers"
    assert _colorbar_label(fig) == ["Velocity (km/s)"]
    y0, y1 = ax.get_ylim()
    assert y0 > y1  # depth increases downwards
    assert ax.get_xlim() == pytest.approx((-5.0, 405.0))
    assert (y0, y1) == pytest.approx((305.0, -5.0))
    image = ax.get_images()[0].get_array()
    assert image.shape == (31, 41) and image[0, 0] == 1.5 and image[-1, 0] == 2.5  # top is shallow
    assert len(ax.lines) == 2  # receivers and sources
    fig.savefig(tmp_path / "model.png")
    assert (tmp_path / "model.png").stat().st_size > 1000
    fig2 = plot.plot_model(models.to_slowness2(vp), GRID, kind="slowness2")
    assert _colorbar_label(fig2) == ["Squared slowness (s$^2$/km$^2$)"]
    with pytest.raises(js.InvalidArgument, match="`kind`"):
        plot.plot_model(vp, GRID, kind="density")
    with pytest.raises(js.InvalidShape, match="shape"):
        plot.plot_model(vp[:-1], GRID)


def test_plot_model_into_existing_axes_and_3d_section():
    fig, axes = plt.subplots(1, 2)
    out = plot.plot_model(models.constant(GRID, 2.0), GRID, ax=axes[1], colorbar=False)
    assert out is fig and axes[1].get_xlabel() == "x (m)" and axes[0].get_xlabel() == ""
    g3 = js.Grid((21, 11, 16), 10.0)
    v3 = models.camembert(g3)
    fig3 = plot.plot_model(v3[:, 5, :], g3)
    assert fig3.axes[0].get_images()[0].get_array().shape == (16, 21)
    with pytest.raises(js.InvalidShape, match="section"):
        plot.plot_model(v3, g3)


def test_plot_shot_axes_and_clip():
    time = js.TimeAxis(0.0, 300.0, 1.0)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(time.nt, 21))
    data[100, 3] = 1e3  # one spike must not set the colour scale
    rec = np.stack([np.linspace(0.0, 400.0, 21), np.full(21, 10.0)], axis=1)
    fig = plot.plot_shot(data, time, rec=rec, title="shot 0")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Receiver x (m)" and ax.get_ylabel() == "Time (ms)"
    y0, y1 = ax.get_ylim()
    assert y0 > y1 and y0 >= 300.0 and y1 <= 0.0  # time downwards
    lo, hi = ax.get_images()[0].get_clim()
    assert lo == -hi and hi == pytest.approx(np.percentile(np.abs(data), 99.0))
    src = np.array([[200.0, 20.0]])
    fig = plot.plot_shot(data, time, rec=rec, src=src, clip=100, cmap="seismic")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Offset (m)" and ax.get_xlim()[0] == pytest.approx(-210.0)
    assert ax.get_images()[0].get_clim()[1] == pytest.approx(1e3)
    assert ax.get_images()[0].get_cmap().name == "seismic"
    fig = plot.plot_shot(data, time.values)
    assert fig.axes[0].get_xlabel() == "Trace index"
    # Irregular receiver spacing still plots (pcolormesh), with time downwards.
    irregular = rec.copy()
    irregular[:, 0] = np.sort(rng.uniform(0, 400, 21))
    fig = plot.plot_shot(data, time, rec=irregular)
    assert fig.axes[0].get_ylim()[0] > fig.axes[0].get_ylim()[1]
    with pytest.raises(js.InvalidShape, match="one record"):
        plot.plot_shot(data[None], time)
    with pytest.raises(js.InvalidShape, match="`time`"):
        plot.plot_shot(data[:-1], time)


def test_plot_image_symmetric_limits():
    image = np.zeros(GRID.shape)
    image[20, 15] = 5.0
    image[10, 10] = -1.0
    fig = plot.plot_image(image, GRID, clip=100.0, title="RTM")
    lo, hi = fig.axes[0].get_images()[0].get_clim()
    assert (lo, hi) == (-5.0, 5.0)
    assert fig.axes[0].get_ylabel() == "Depth (m)" and _colorbar_label(fig) == ["Amplitude"]
    with pytest.raises(js.InvalidArgument, match="`clip`"):
        plot.plot_image(image, GRID, clip=0.0)


def test_plot_loss():
    history = [10.0, 3.0, 1.0, 0.2]
    fig = plot.plot_loss(history)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "Iteration" and ax.get_ylabel() == "Loss"
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), history)
    fig = plot.plot_loss({"l2": history, "ncc": [4.0, 2.0, 1.0]}, log=False, normalize=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "Loss (relative)"
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.0, 0.5, 0.25])
    with pytest.warns(UserWarning, match="linear"):
        fig = plot.plot_loss([1.0, 0.0, -1.0])
    assert fig.axes[0].get_yscale() == "linear"


def test_plot_models_shared_colour_limits():
    a = models.constant(GRID, 1.5)
    b = models.camembert(GRID, 2.0, 3.5)
    smooth = models.smooth(b, 50.0, GRID)
    fig = plot.plot_models([("true", b), ("initial", a), ("smooth", smooth)], GRID)
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in axes] == ["true", "initial", "smooth"]
    assert all(ax.get_xlabel() == "x (m)" for ax in axes) and axes[0].get_ylabel() == "Depth (m)"
    assert {ax.get_images()[0].get_clim() for ax in axes} == {(1.5, 3.5)}
    assert _colorbar_label(fig) == ["Velocity (km/s)"]
    with pytest.raises(js.InvalidArgument, match="`axes`"):
        plot.plot_models([("a", a), ("b", b)], GRID, axes=plt.subplots(1, 3)[1])
