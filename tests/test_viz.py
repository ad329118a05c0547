"""Figures say what they show: labelled colour bars, readable shading, seconds, region names."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from lightbunny.viz import plot_cortex, plot_timecourses, region_label  # noqa: E402


def test_cortex_views_colour_bar_and_light_shading(tiny_atlas):
    values = np.linspace(0.0, 1.0, tiny_atlas.n_regions)
    fig = plot_cortex(tiny_atlas, values, views=("left lateral", "right lateral"), cmap="Reds",
                      symmetric=False, cbar_label="power / max (normalised)", ambient=0.6)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "power / max (normalised)" in labels  # the colour bar says what it measures
    views = [ax for ax in fig.axes if ax.get_title() in ("left lateral", "right lateral")]
    assert len(views) == 2
    hemi = tiny_atlas.vertex_hemisphere[tiny_atlas.triangles[:, 0]]
    for ax, h in zip(views, (0, 1)):
        (coll,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
        # one hemisphere per view, its faces turned away from the viewer left out
        assert 0.3 * (hemi == h).sum() < len(coll.get_facecolors()) < (hemi == h).sum()
    # shading never darkens a face below `ambient` times its colour: on a blank map (the
    # palest colour of the map everywhere) every face stays light, and faces seen head-on are
    # brighter than faces seen edge-on
    fig = plot_cortex(tiny_atlas, np.zeros(tiny_atlas.n_regions), views=("left lateral",),
                      cmap="Greys", symmetric=False, ambient=0.6)
    (coll,) = [c for ax in fig.axes for c in ax.collections if isinstance(c, PolyCollection)]
    grey = coll.get_facecolors()[:, 0]
    assert grey.min() >= 0.6 * 0.99 and grey.max() > 0.95 and np.ptp(grey) > 0.2
    with pytest.raises(ValueError, match="ambient"):
        plot_cortex(tiny_atlas, values, ambient=1.5)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_time_courses_in_seconds_with_spelled_out_region_names():
    times = np.arange(250) / 500.0
    data = np.stack([np.sin(2 * np.pi * f * times) for f in (3, 5)], axis=1)
    fig = plot_timecourses(times, data, ["lTCS", "region_7"], ylabel="network output (a.u.)")
    axes = [ax for ax in fig.axes if ax.lines]
    assert len(axes) == 2  # small multiples: one trace per panel, never on top of each other
    assert [ax.get_title(loc="left") for ax in axes] == ["lTCS: left superior temporal cortex",
                                                         "region_7"]
    assert axes[-1].get_xlabel() == "time (s)"
    assert axes[0].get_ylim() == axes[1].get_ylim()  # one amplitude scale for all
    np.testing.assert_allclose(axes[0].lines[0].get_xdata(), times)
    with pytest.raises(ValueError, match="n_traces=3"):
        plot_timecourses(times, data, ["a", "b", "c"])
    import matplotlib.pyplot as plt

    plt.close("all")


def test_region_label():
    assert region_label("rPMCM") == "rPMCM: right medial premotor cortex"
    assert region_label("lV1") == "lV1: left primary visual cortex"
    assert region_label("x17") == "x17"
