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


def _view_frame(elev: float, azim: float):
    """Unit vectors (towards the viewer, screen right, screen up) of matplotlib's ``view_init``."""
    e, a = np.deg2rad(elev), np.deg2rad(azim)
    eye = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    right = np.array([-np.sin(a), np.cos(a), 0.0])
    return eye, right, np.cross(eye, right)


def plot_cortex(atlas: Atlas, region_values, *, views=("left lateral", "right lateral",
                                                       "left medial", "right medial"),
                cmap: str = "RdBu_r", symmetric: bool | None = None, title: str | None = None,
                vmax: float | None = None, fig=None, cbar_label: str | None = None,
                ambient: float = 0.6):
    """Draw one value per region on the cortex mesh, from several views.

    Each view is an orthographic projection drawn in 2D: faces turned away from the viewer
    (by the atlas' outward normals) are left out and the rest drawn far to near. Faces are
    shaded by how directly they face the viewer, never darker than ``ambient`` so colours stay
    readable on medial views.

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
    fig : Figure or SubFigure, optional
    cbar_label : str, optional
        Label of the colour bar: the quantity and its unit (or "normalised").
    ambient : float
        Brightness of a face seen edge-on, in [0, 1] (1: no shading).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    plt = _mpl()
    from matplotlib.collections import PolyCollection

    values = np.asarray(region_values, dtype=float)
    if values.shape != (atlas.n_regions,):
        raise ValueError(f"region_values has shape {values.shape}; atlas {atlas.name!r} has "
                         f"{atlas.n_regions} regions")
    for v in views:
        if v not in VIEWS:
            raise ValueError(f"Unknown view {v!r}. Allowed: {', '.join(VIEWS)}")
    if not 0.0 <= ambient <= 1.0:
        raise ValueError(f"ambient must lie in [0, 1], got {ambient!r}")
    if symmetric is None:
        symmetric = values.min() < 0 < values.max()
    vmax = float(np.abs(values).max() if vmax is None else vmax) or 1.0
    vmin = -vmax if symmetric else float(min(values.min(), 0.0))
    norm = plt.Normalize(vmin, vmax)
    tri = atlas.triangles
    verts = np.asarray(atlas.vertices, dtype=float)
    face_val = values[atlas.vertex_region[tri]].mean(1)
    face_hemi = atlas.vertex_hemisphere[tri[:, 0]]
    colours = plt.get_cmap(cmap)(norm(face_val))
    p = verts[tri]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    outward = np.asarray(atlas.normals, dtype=float)[tri].mean(1)  # per face, from the atlas
    fig = fig or plt.figure(figsize=(3.2 * len(views), 3.4))
    axes = []
    for i, view in enumerate(views):
        hemi, elev, azim = VIEWS[view]
        eye, right, up = _view_frame(elev, azim)
        ax = fig.add_subplot(1, len(views), i + 1)
        keep = np.ones(len(tri), bool) if hemi is None else face_hemi == hemi
        keep &= outward @ eye > -0.1  # back faces are hidden behind front ones: skip them
        idx = np.flatnonzero(keep)
        depth = p[idx].mean(1) @ eye
        idx = idx[np.argsort(depth)]  # far faces first, near faces drawn over them
        xy = np.stack([p[idx] @ right, p[idx] @ up], axis=-1)
        light = ambient + (1.0 - ambient) * np.abs(normal[idx] @ eye)
        rgba = colours[idx].copy()
        rgba[:, :3] *= light[:, None]
        ax.add_collection(PolyCollection(xy, facecolors=rgba, edgecolors="none",
                                         antialiaseds=False), autolim=False)
        all_xy = np.stack([verts @ right, verts @ up], axis=-1)  # same scale in every view
        lo, hi = all_xy.min(0), all_xy.max(0)
        ax.set_xlim(lo[0], hi[0]), ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(view, fontsize=9)
        axes.append(ax)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    cbar = fig.colorbar(sm, ax=axes, shrink=0.8, fraction=0.025, pad=0.02)
    if cbar_label:
        cbar.set_label(cbar_label, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def region_label(name: str) -> str:
    """``'lTCS: left superior temporal cortex'`` for a tvb76 label, else the name itself."""
    from .atlas import describe_region

    full = describe_region(name)
    return name if full == name else f"{name}: {full}"


def plot_timecourses(times, data, names, *, ylabel: str = "a.u.", title: str | None = None,
                     fig=None):
    """Small multiples: one row per region on a shared time axis and a shared y scale.

    Parameters
    ----------
    times : array-like, shape (n_times,), s
    data : array-like, shape (n_times, n_traces)
    names : sequence of str, length n_traces
        Region labels; tvb76 abbreviations are spelled out next to each trace.
    ylabel : str
        Quantity and unit of the values.
    title : str, optional

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    plt = _mpl()
    data = np.asarray(data, dtype=float)
    times = np.asarray(times, dtype=float)
    if data.ndim != 2 or data.shape[0] != len(times) or data.shape[1] != len(names):
        raise ValueError(f"data must have shape (n_times={len(times)}, n_traces={len(names)}), "
                         f"got {data.shape}")
    n = data.shape[1]
    fig = fig or plt.figure(figsize=(8, 0.9 + 1.0 * n))
    axes = np.atleast_1d(fig.subplots(n, 1, sharex=True, sharey=True))
    colours = plt.get_cmap("tab10")
    for k, ax in enumerate(axes):
        ax.plot(times, data[:, k], lw=0.9, color=colours(k % 10))
        ax.set_title(region_label(names[k]), loc="left", fontsize=8, pad=2)
        ax.axhline(0, color="0.8", lw=0.5, zorder=0)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("time (s)")
    fig.supylabel(ylabel, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
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
