"""Figures: values on the cortex, sensors on the head. Matplotlib only (imported lazily).

Views follow the RAS atlas frame: ``lateral`` looks at a hemisphere from its own side,
``medial`` from the other side with the opposite hemisphere hidden.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atlas import Atlas

#: (hemisphere, elevation, azimuth) of each named view, for matplotlib's 3D axes.
VIEWS = {
    "left lateral": (0, 0, 180),
    "left medial": (0, 0, 0),
    "right lateral": (1, 0, 0),
    "right medial": (1, 0, 180),
    "top": (None, 90, -90),
}


def _mpl():
    """pyplot, imported lazily (matplotlib falls back to Agg on a machine without display)."""
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, *, dpi: int = 90) -> Path:
    """Write ``fig`` as PNG atomically (no half-written file under ``path``) and close it."""
    from .utils import atomic_path

    plt = _mpl()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def plot_cortex(atlas: Atlas, region_values, *, views=("left lateral", "right lateral",
                                                       "left medial", "right medial"),
                cmap: str = "RdBu_r", symmetric: bool | None = None, title: str | None = None,
                vmax: float | None = None, fig=None):
    """Draw one value per region on the cortex mesh, from several views.

    Parameters
    ----------
    atlas : Atlas
    region_values : array-like, shape (n_regions,)
    views : sequence of str
        Keys of :data:`VIEWS`.
    cmap : str
    symmetric : bool, optional
        Colour limits symmetric about 0 (default: when values have both signs).
    title : str, optional
    vmax : float, optional

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    plt = _mpl()
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    values = np.asarray(region_values, dtype=float)
    if values.shape != (atlas.n_regions,):
        raise ValueError(f"region_values has shape {values.shape}; atlas {atlas.name!r} has "
                         f"{atlas.n_regions} regions")
    for v in views:
        if v not in VIEWS:
            raise ValueError(f"Unknown view {v!r}. Allowed: {', '.join(VIEWS)}")
    if symmetric is None:
        symmetric = values.min() < 0 < values.max()
    vmax = float(np.abs(values).max() if vmax is None else vmax) or 1.0
    vmin = -vmax if symmetric else float(min(values.min(), 0.0))
    norm = plt.Normalize(vmin, vmax)
    tri = atlas.triangles
    face_val = values[atlas.vertex_region[tri]].mean(1)
    face_hemi = atlas.vertex_hemisphere[tri[:, 0]]
    colours = plt.get_cmap(cmap)(norm(face_val))
    # simple shading by the face normal's alignment with the viewing direction
    fig = fig or plt.figure(figsize=(3.2 * len(views), 3.4))
    for i, view in enumerate(views):
        hemi, elev, azim = VIEWS[view]
        ax = fig.add_subplot(1, len(views), i + 1, projection="3d")
        keep = np.ones(len(tri), bool) if hemi is None else face_hemi == hemi
        polys = atlas.vertices[tri[keep]]
        coll = Poly3DCollection(polys, facecolors=colours[keep], edgecolor="none", shade=True,
                                lightsource=None)
        ax.add_collection3d(coll)
        lo, hi = atlas.vertices.min(0), atlas.vertices.max(0)
        ax.set_xlim(lo[0], hi[0]), ax.set_ylim(lo[1], hi[1]), ax.set_zlim(lo[2], hi[2])
        ax.set_box_aspect(hi - lo)
        ax.view_init(elev=elev, azim=azim)
        ax.set_axis_off()
        ax.set_title(view, fontsize=9)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=fig.axes, shrink=0.6, fraction=0.02)
    if title:
        fig.suptitle(title)
    return fig


def plot_sensors(atlas: Atlas, leadfield, *, head: bool = True, fig=None):
    """Electrodes of a leadfield on the atlas head, with the cortex inside.

    Parameters
    ----------
    atlas : Atlas
    leadfield : lightbunny.leadfield.Leadfield

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    plt = _mpl()
    from .leadfield import head_surface

    fig = fig or plt.figure(figsize=(10, 3.6))
    for i, (elev, azim, label) in enumerate([(0, 180, "left"), (0, 90, "front"), (90, -90, "top")]):
        ax = fig.add_subplot(1, 3, i + 1, projection="3d")
        v = atlas.vertices[:: max(1, atlas.n_vertices // 3000)]
        ax.scatter(*v.T, s=1, c="0.6", alpha=0.3)
        if head:
            hv, _, _ = head_surface(atlas)
            ax.scatter(*hv.T, s=1, c="tan", alpha=0.15)
        p = leadfield.ch_pos
        ax.scatter(*p.T, s=18, c="tab:blue", depthshade=False)
        if label == "top":
            for name, xyz in zip(leadfield.ch_names, p):
                ax.text(*xyz, name, fontsize=5)
        ax.view_init(elev=elev, azim=azim)
        ax.set_box_aspect(np.ptp(np.vstack([v, p]), axis=0))
        ax.set_axis_off()
        ax.set_title(label, fontsize=9)
    fig.suptitle(f"{leadfield.n_chans} electrodes ({leadfield.montage}) on the {atlas.name} head")
    return fig
