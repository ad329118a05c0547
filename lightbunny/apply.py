"""Apply a source-imaging model to a real recording and write what it found.

A "model" is anything with the package's one contract: ``ch_names``, ``n_sources``, ``sfreq``
and ``apply(eeg)`` mapping EEG of shape (n_times, n_chans) to sources of shape
(n_times, n_sources). Two kinds are provided:

* :class:`NetworkModel` wraps a trained network (a checkpoint of :mod:`lightbunny.train`, or any
  torch module mapping (batch, n_times, n_chans) to (batch, n_times, n_sources)). The EEG is cut
  into windows of the network's length ``n_times`` with a configurable overlap; each window is
  scaled exactly as training samples are (the checkpoint's named normalisation,
  :data:`lightbunny.inference.NORMALISATIONS`: ``'avgref-centre-maxabs/1'`` is average
  reference, centring in time, division by the maximum absolute value); the network's output is
  multiplied back by that window's divisor (so the windows of one recording share one amplitude
  scale; unit: network output x V), and overlapping windows are averaged (:func:`stitch_windows`).
  The last partial window is zero-padded at its end. **A recording shorter than one window** is
  zero-padded the same way (with a logged warning) by default; ``short='error'`` refuses it. The
  padded samples are never returned.
* :class:`ClassicalModel` wraps a classical inverse (:func:`lightbunny.inverse.make_inverse`,
  e.g. sLORETA) on a leadfield. These are linear and time-invariant, so they are applied to the
  whole prepared recording at once (no windows, no per-window scaling; LCMV estimates its data
  covariance from the whole range).

:func:`image_recording` prepares a recording for a model (:func:`lightbunny.io.prepare_recording`)
and applies it; :func:`run_apply` (the ``lightbunny apply`` command) does that and writes region
time courses (HDF5 with attributes, CSV), an ``mne.SourceEstimate`` on the atlas cortex (``.stc``
files), a JSON report, and figures.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._logging import logger
from .inference import NORMALISATION, NORMALISATIONS, checkpoint_normalisation, load_model
from .io import PreparedEEG, _positions, prepare_recording
from .utils import (atomic_path, check_option, open_h5_format, read_h5_attrs, read_only, versions,
                    write_h5_attrs, write_json)

SHORT_MODES = ("pad", "error")
#: HDF5 format of ``sources.h5`` (version 1, lightbunny 0.1: no format marker, each entry of
#: the meta an attribute of its own, dicts and lists JSON-encoded)
RESULT_FORMAT = "lightbunny-imaging-result"
RESULT_FORMAT_VERSION = 2
#: Files written by :func:`run_apply`, by role.
OUTPUT_FILES = {"sources_h5": "sources.h5", "sources_csv": "sources.csv",
                "report": "report.json", "stc": "sources", "power_map": "power_map.png",
                "timecourses": "timecourses.png", "topomap": "topomap.png"}


# --------------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------------


def window_starts(n_total: int, n_window: int, overlap: float = 0.5) -> np.ndarray:
    """First sample of each window covering ``n_total`` samples.

    Parameters
    ----------
    n_total : int
        Samples in the recording (>= 1).
    n_window : int
        Samples per window.
    overlap : float
        Fraction of a window shared with the next, in [0, 1). The step is
        ``n_window - round(overlap * n_window)`` (at least 1).

    Returns
    -------
    starts : ndarray of int, shape (n_windows,)
        The last window may run past ``n_total`` (it is padded).

    Examples
    --------
    >>> window_starts(1000, 500, 0.5).tolist()
    [0, 250, 500]
    >>> window_starts(1100, 500, 0.0).tolist()
    [0, 500, 1000]
    >>> window_starts(300, 500).tolist()
    [0]
    """
    if not (isinstance(n_window, (int, np.integer)) and n_window >= 1):
        raise ValueError(f"n_window must be a positive integer, got {n_window!r}.")
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be a fraction in [0, 1), got {overlap!r}.")
    step = max(1, n_window - int(round(overlap * n_window)))
    last = max(n_total - n_window, 0)
    starts = list(range(0, last + 1, step))
    if starts[-1] + n_window < n_total:
        starts.append(starts[-1] + step)
    return np.asarray(starts, dtype=np.int64)


def sliding_windows(eeg: np.ndarray, n_window: int, overlap: float = 0.5):
    """Cut EEG into (zero-padded) windows.

    Parameters
    ----------
    eeg : ndarray, shape (n_times, n_chans)
    n_window : int
    overlap : float
        See :func:`window_starts`.

    Returns
    -------
    windows : ndarray, shape (n_windows, n_window, n_chans)
        A read-only view of the (zero-padded) recording: the windows are not copied.
    starts : ndarray of int, shape (n_windows,)
    """
    eeg = np.asarray(eeg)
    starts = window_starts(len(eeg), n_window, overlap)
    pad = max(0, int(starts[-1]) + n_window - len(eeg))
    padded = np.concatenate([eeg, np.zeros((pad, eeg.shape[1]), eeg.dtype)]) if pad else eeg
    # every start is a multiple of the step (window_starts), so the windows are a strided view
    step = int(starts[1] - starts[0]) if len(starts) > 1 else 1
    view = np.lib.stride_tricks.sliding_window_view(padded, n_window, axis=0)
    return np.moveaxis(view[::step][:len(starts)], -1, 1), starts


def stitch_windows(outputs, starts: np.ndarray, n_total: int) -> np.ndarray:
    """Put window outputs back on one time axis, averaging where windows overlap.

    Parameters
    ----------
    outputs : ndarray, shape (n_windows, n_window, n_sources), or iterable of such arrays
        The outputs of all windows, or batches of consecutive windows (in order), consumed one
        at a time so that only one batch is held besides the result.
    starts : ndarray of int, shape (n_windows,)
    n_total : int
        Samples of the result (padded samples beyond it are discarded).

    Returns
    -------
    stitched : ndarray, shape (n_total, n_sources)

    Examples
    --------
    >>> out = np.stack([np.full((4, 1), 1.0), np.full((4, 1), 3.0)])
    >>> stitch_windows(out, np.array([0, 2]), 6)[:, 0].tolist()
    [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    >>> stitch_windows(iter([out[:1], out[1:]]), np.array([0, 2]), 6)[:, 0].tolist()
    [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    """
    if isinstance(outputs, np.ndarray):
        outputs = [outputs]
    total = count = None
    k = 0
    for batch in outputs:
        batch = np.asarray(batch)
        if total is None:
            n_window = batch.shape[1]
            total = np.zeros((int(starts[-1]) + n_window, batch.shape[2]))
            count = np.zeros(len(total))
        for out in batch:
            s = int(starts[k])
            total[s:s + n_window] += out
            count[s:s + n_window] += 1
            k += 1
    if k != len(starts):
        raise ValueError(f"{k} window outputs for {len(starts)} window starts.")
    return total[:n_total] / count[:n_total, None]


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class ClassicalModel:
    """A classical inverse on a leadfield, with the apply contract.

    Parameters
    ----------
    solver : lightbunny.inverse.InverseSolver
    atlas_name : str
    sfreq : float, Hz
        Rate the recording is resampled to (no effect on the estimate's shape; 500 Hz keeps
        outputs comparable with the networks').
    leadfield : lightbunny.leadfield.Leadfield, optional
        Kept for electrode positions.
    """

    kind = "classical"
    n_times = None

    def __init__(self, solver, *, atlas_name: str, sfreq: float = 500.0, leadfield=None):
        self.solver = solver
        self.name = solver.method
        self.ch_names = list(solver.ch_names)
        self.n_sources = int(solver.n_sources)
        self.atlas_name = str(atlas_name)
        self.sfreq = float(sfreq)
        self.leadfield = leadfield
        self.units = f"{self.name} (a.u.)"

    def apply(self, eeg: np.ndarray) -> np.ndarray:
        """Sources, shape (n_times, n_sources), of average-referenced EEG (n_times, n_chans), V."""
        return self.solver.apply(eeg)

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "config": self.solver.get_config(),
                "atlas_name": self.atlas_name, "sfreq": self.sfreq}


class NetworkModel:
    """A trained network applied window by window, with the apply contract.

    Parameters
    ----------
    net : torch.nn.Module
        Maps (batch, n_times, n_chans) to (batch, n_times, n_sources).
    ch_names : sequence of str, length n_chans
        Its input channels, in order.
    n_times : int
        Its window length, samples.
    sfreq : float, Hz
        Its training rate.
    atlas_name : str
    name : str
    overlap : float
        Window overlap, fraction in [0, 1).
    short : {'pad', 'error'}
        A recording shorter than one window is zero-padded (default) or refused.
    batch_size : int
        Windows per forward pass.
    device : str
    meta : dict, optional
        The checkpoint's ``meta`` (kept for the report).
    normalisation : str
        The name of the input scaling of each window (:data:`lightbunny.inference.NORMALISATIONS`).
    """

    kind = "network"

    def __init__(self, net, *, ch_names, n_times: int, sfreq: float = 500.0, atlas_name: str,
                 name: str = "network", overlap: float = 0.5, short: str = "pad",
                 batch_size: int = 64, device: str = "cpu", meta: dict | None = None,
                 n_sources: int | None = None, normalisation: str = NORMALISATION):
        check_option("short", short, SHORT_MODES)
        check_option("normalisation", normalisation, NORMALISATIONS)
        self.normalisation = normalisation
        window_starts(1, int(n_times), overlap)  # validates both
        self.net = net
        self.ch_names = [str(c) for c in ch_names]
        self.n_times = int(n_times)
        self.sfreq = float(sfreq)
        self.atlas_name = str(atlas_name)
        self.name = name
        self.overlap = float(overlap)
        self.short = short
        self.batch_size = int(batch_size)
        self.device = device
        self.meta = meta or {}
        self.leadfield = None  # optional: electrode positions of its channels (ch_pos, mm)
        self.n_sources = int(n_sources if n_sources is not None
                             else getattr(net, "n_sources", 0)) or None
        self.units = "a.u. (network output x window scale, V)"

    def apply_windows(self, windows: np.ndarray) -> np.ndarray:
        """Network output of windows (n_windows, n_times, n_chans), V, rescaled to the input.

        Each window is scaled by the model's normalisation (:attr:`normalisation`); the output
        is multiplied by that window's divisor. Returns (n_windows, n_times, n_sources).
        """
        import torch

        normalise = NORMALISATIONS[self.normalisation]
        x, scale = normalise(np.asarray(windows, dtype=np.float64), return_scale=True)
        outs = []
        self.net.eval()
        with torch.no_grad():
            for i in range(0, len(x), self.batch_size):
                batch = torch.as_tensor(x[i:i + self.batch_size], dtype=torch.float32,
                                        device=self.device)
                outs.append(self.net(batch).float().cpu().numpy())
        out = np.concatenate(outs).astype(np.float64)
        if out.shape[:2] != x.shape[:2]:
            raise ValueError(f"the network returned shape {out.shape} for input {x.shape}; "
                             "expected (batch, n_times, n_sources).")
        return out * scale

    def apply(self, eeg: np.ndarray) -> np.ndarray:
        """Sources (n_times, n_sources) of EEG (n_times, n_chans), V, by overlapping windows."""
        eeg = np.asarray(eeg, dtype=np.float64)
        if eeg.ndim != 2 or eeg.shape[1] != len(self.ch_names):
            raise ValueError(f"eeg must have shape (n_times, {len(self.ch_names)}), got "
                             f"{eeg.shape}.")
        if not np.isfinite(eeg).all():
            raise ValueError("eeg contains NaN or infinite values.")
        if len(eeg) < self.n_times:
            msg = (f"The EEG has {len(eeg)} samples, fewer than the network's window of "
                   f"{self.n_times} ({self.n_times / self.sfreq:g} s)")
            if self.short == "error":
                raise ValueError(msg + ". Use a longer time range, or short='pad'.")
            logger.warning("%s; zero-padded to one window.", msg)
        # the windows are a view and their outputs are stitched batch by batch, so memory
        # does not grow with the number of windows
        windows, starts = sliding_windows(eeg, self.n_times, self.overlap)
        size = self.batch_size
        outputs = (self.apply_windows(windows[i:i + size]) for i in range(0, len(windows), size))
        return stitch_windows(outputs, starts, len(eeg))

    def describe(self) -> dict:
        cfg = self.net.get_config() if hasattr(self.net, "get_config") else {}
        return {"kind": self.kind, "name": self.name, "config": cfg, "atlas_name": self.atlas_name,
                "sfreq": self.sfreq, "n_times": self.n_times, "overlap": self.overlap,
                "short": self.short, "normalisation": self.normalisation}


def load_source_model(checkpoint=None, method: str | None = None, *, atlas=None, montage=None,
                      leadfield=None, snr: float = 3.0, sfreq: float = 500.0,
                      overlap: float = 0.5, short: str = "pad", device: str = "cpu",
                      data_dir=None):
    """Build the model ``lightbunny apply`` runs: a checkpoint's network or a classical method.

    Parameters
    ----------
    checkpoint : path or str, optional
        A ``best.pt`` / ``last.pt`` of :func:`lightbunny.train.train` (read with
        ``weights_only=True``), or the name of a model
        (:func:`lightbunny.inference.list_models`). Its ``meta`` gives the channels, atlas, rate
        and input normalisation.
    method : str, optional
        A classical method of :func:`lightbunny.inverse.make_inverse` (``'sLORETA'``, ...).
        Exactly one of ``checkpoint`` and ``method``.
    atlas : str or Atlas, optional
        For ``method``: the atlas (default ``'tvb76'``). For ``checkpoint``: must agree with it.
    montage : str or list of str, optional
        For ``method``: the leadfield's montage (default 64 channels of the 10-10 system).
    leadfield : Leadfield or path, optional
        For ``method``: use this leadfield instead of computing one.
    snr : float
        Amplitude SNR of the classical regularisation.
    sfreq : float, Hz
        Rate for classical methods (networks use their training rate).
    overlap, short, device
        See :class:`NetworkModel`.

    Returns
    -------
    model : NetworkModel or ClassicalModel
    """
    if (checkpoint is None) == (method is None):
        raise ValueError("Give exactly one of checkpoint (a trained network) and method (a "
                         "classical inverse such as 'sLORETA').")
    atlas_name = getattr(atlas, "name", atlas)
    if method is not None:
        from .inverse import make_inverse
        from .leadfield import Leadfield, make_leadfield

        if leadfield is not None:
            lf = leadfield if isinstance(leadfield, Leadfield) else Leadfield.load(leadfield)
            if atlas_name is not None and lf.atlas_name != atlas_name:
                raise ValueError(f"The leadfield is for atlas {lf.atlas_name!r}, not "
                                 f"{atlas_name!r}.")
        else:
            from .atlas import Atlas, load_atlas

            atlas_obj = atlas if isinstance(atlas, Atlas) else load_atlas(atlas or "tvb76",
                                                                          data_dir=data_dir)
            # data_dir also locates montage files (deepsif75: electrode_75.mat)
            lf = make_leadfield(atlas_obj, montage, data_dir=data_dir) if montage is not None \
                else make_leadfield(atlas_obj, data_dir=data_dir)
        solver = make_inverse(method, lf.gain, lf.ch_names, snr=snr)
        return ClassicalModel(solver, atlas_name=lf.atlas_name, sfreq=sfreq, leadfield=lf)
    from .utils import resolve_device

    device = resolve_device(device)
    net, ckpt = load_model(checkpoint, device=device)
    meta = ckpt.get("meta") or {}
    prep = meta.get("preprocessing") or {}
    ch_names = meta.get("ch_names") or prep.get("ch_names")
    ckpt_atlas = meta.get("atlas") or prep.get("atlas_name")
    config = ckpt.get("model_config") or {}
    n_times = config.get("n_times") or prep.get("n_times")
    if not ch_names or not ckpt_atlas or not n_times:
        raise ValueError(f"{checkpoint} does not record its channels, atlas and window length "
                         f"(meta keys: {sorted(meta)}); it cannot be applied to a recording.")
    if atlas_name is not None and atlas_name != ckpt_atlas:
        raise ValueError(f"{checkpoint} was trained on atlas {ckpt_atlas!r}, not {atlas_name!r}.")
    positions_lf = _checkpoint_positions(ch_names, montage, leadfield, data_dir)
    n_chans = config.get("n_chans")
    if n_chans is not None and int(n_chans) != len(ch_names):
        raise ValueError(f"{checkpoint}: the network takes {n_chans} channels but its meta lists "
                         f"{len(ch_names)}.")
    if "sfreq" not in prep:
        logger.warning("%s does not record its sampling rate; assuming 500 Hz", checkpoint)
    try:
        normalisation = checkpoint_normalisation(meta)
    except ValueError as err:
        raise ValueError(f"{checkpoint}: {err}") from None
    model = NetworkModel(net, ch_names=ch_names, n_times=int(n_times),
                         sfreq=float(prep.get("sfreq", 500.0)), atlas_name=ckpt_atlas,
                         name=ckpt.get("model_name", "network"), overlap=overlap, short=short,
                         device=device, meta=meta, n_sources=config.get("n_sources"),
                         normalisation=normalisation)
    model.leadfield = positions_lf
    return model


def _checkpoint_positions(ch_names, montage, leadfield, data_dir):
    """A leadfield whose channels are the network's, for electrode positions only, or None.

    A checkpoint stores channel names but no positions; names outside MNE's 10-05 montage
    (e.g. DeepSIF's cap: Nz, TP11, TP12) need them for interpolation and the topomap. They are
    taken from ``leadfield`` (a Leadfield or .h5 file) when its channels are the network's, else
    from ``montage`` (see :func:`lightbunny.leadfield.resolve_montage`).
    """
    from .leadfield import Leadfield

    if leadfield is not None:
        lf = leadfield if isinstance(leadfield, Leadfield) else Leadfield.load(leadfield)
        if list(lf.ch_names) == list(ch_names):
            return lf
        logger.warning("the leadfield's channels differ from the network's; its positions are "
                       "not used (the network expects the %d channels it was trained on)",
                       len(ch_names))
        return None
    if montage is None:
        return None
    from .external import montage_positions

    label, names, pos = montage_positions(montage, data_dir=data_dir)
    frame = "10-05"
    table = dict(zip(names, np.asarray(pos, dtype=float)))
    if not set(ch_names) <= set(table):
        logger.warning("montage %s lacks channels of the network (%s); its positions are not "
                       "used", label, ", ".join(sorted(set(ch_names) - set(table))[:8]))
        return None
    return Leadfield(gain=np.zeros((len(ch_names), 1)), ch_names=tuple(ch_names),
                     atlas_name="positions-only", montage=label, head_model="none",
                     orientation="none", ch_pos=np.array([table[c] for c in ch_names]),
                     attrs={"note": f"electrode positions only ({frame} frame, mm)"})


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ImagingResult:
    """Source time courses of one recording, with everything needed to describe them.

    Attributes
    ----------
    source : ndarray, shape (n_times, n_sources)
        Region time courses (unit in ``units``).
    prepared : PreparedEEG
        The EEG the model saw (n_times, n_chans), V, and the realignment report.
    model : dict
        :meth:`describe` of the model.
    units : str
    paths : dict
        Files written by :meth:`save` (role -> path).
    """

    source: np.ndarray
    prepared: PreparedEEG
    model: dict
    units: str
    paths: dict = field(default_factory=dict)

    @property
    def sfreq(self) -> float:
        return self.prepared.sfreq

    @property
    def times(self) -> np.ndarray:
        """Sample times, s, shape (n_times,)."""
        return self.prepared.times

    def region_power(self) -> np.ndarray:
        """Mean squared activity of each region over time, shape (n_sources,)."""
        return np.mean(self.source**2, axis=0)

    def top_regions(self, k: int = 5) -> np.ndarray:
        """Indices of the ``k`` regions of highest power, strongest first."""
        return np.argsort(self.region_power())[::-1][:k]

    def to_stc(self, atlas, *, max_times: int | None = 500):
        """The region time courses on the atlas cortex as an ``mne.SourceEstimate``.

        Every vertex takes its region's value; vertices are split by
        ``atlas.vertex_hemisphere`` and numbered within each hemisphere (left-hemisphere
        vertex ``k`` is the ``k``-th atlas vertex with hemisphere 0). ``subject`` is the atlas
        name (the ``.stc`` format does not store it: pass ``subject=`` when reading). With
        more than ``max_times`` samples, consecutive samples are averaged in blocks
        (``tstep`` grows accordingly) so the estimate stays a manageable size.
        """
        import mne

        if atlas.n_regions != self.source.shape[1]:
            raise ValueError(f"atlas {atlas.name!r} has {atlas.n_regions} regions; the sources "
                             f"have {self.source.shape[1]}.")
        src, tstep = self.source, 1.0 / self.sfreq
        if max_times is not None and len(src) > max_times:
            factor = math.ceil(len(src) / max_times)
            n = len(src) // factor * factor
            src = src[:n].reshape(-1, factor, src.shape[1]).mean(axis=1)
            tstep *= factor
            logger.info("SourceEstimate: %d samples averaged in blocks of %d", n, factor)
        hemi = np.asarray(atlas.vertex_hemisphere)
        lh, rh = np.flatnonzero(hemi == 0), np.flatnonzero(hemi == 1)
        data = np.concatenate([src.T[atlas.vertex_region[lh]], src.T[atlas.vertex_region[rh]]])
        return mne.SourceEstimate(data, [np.arange(len(lh)), np.arange(len(rh))],
                                  tmin=self.prepared.tmin, tstep=tstep, subject=atlas.name)

    def attrs(self) -> dict:
        """Everything that describes the result, as plain JSON types."""
        p = self.prepared
        return {"sfreq": p.sfreq, "tmin": p.tmin, "n_times": int(self.source.shape[0]),
                "n_sources": int(self.source.shape[1]), "units": self.units,
                "kind": p.kind, "n_averaged": p.n_averaged, "recording": p.source,
                "ch_names": list(p.ch_names), "model": self.model,
                "atlas_name": self.model.get("atlas_name"),
                "realignment": p.report.to_dict(), "versions": versions()}

    def save(self, out_dir, atlas=None, *, figures: bool = True, max_stc_times: int | None = 500,
             n_top: int = 5) -> dict:
        """Write the outputs into ``out_dir`` (see :data:`OUTPUT_FILES`); returns their paths.

        ``sources.h5`` holds ``source`` (n_times, n_sources), ``times`` (s), ``eeg``
        (n_times, n_chans, V, the model's input) and ``region_power``, with the :meth:`attrs`,
        ``region_names`` and ``layout`` in its ``meta`` (:func:`lightbunny.utils.write_h5_attrs`;
        read it with :func:`load_result`); ``sources.csv`` has a ``time_s`` column and one column
        per region. The SourceEstimate and the figures need ``atlas``.
        """
        import h5py

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        attrs = self.attrs()
        names = (list(atlas.region_names) if atlas is not None
                 else [f"region_{i:03d}" for i in range(self.source.shape[1])])
        paths = {}
        with atomic_path(out / OUTPUT_FILES["sources_h5"]) as tmp:
            with h5py.File(tmp, "w") as f:
                f.create_dataset("source", data=self.source)
                f.create_dataset("times", data=self.times)
                f.create_dataset("eeg", data=self.prepared.eeg)
                f.create_dataset("region_power", data=self.region_power())
                write_h5_attrs(f, RESULT_FORMAT, RESULT_FORMAT_VERSION, {
                    **attrs, "region_names": names,
                    "layout": "source: (n_times, n_sources); eeg: (n_times, n_chans) V, "
                              "average reference; times: s"})
        paths["sources_h5"] = out / OUTPUT_FILES["sources_h5"]
        with atomic_path(out / OUTPUT_FILES["sources_csv"]) as tmp:
            header = ",".join(["time_s"] + [n.replace(",", "_") for n in names])
            np.savetxt(tmp, np.column_stack([self.times, self.source]), delimiter=",",
                       header=header, comments="", fmt="%.8g")
        paths["sources_csv"] = out / OUTPUT_FILES["sources_csv"]
        if atlas is not None:
            stc = self.to_stc(atlas, max_times=max_stc_times)
            paths.update(_save_stc(stc, out / OUTPUT_FILES["stc"]))
            if figures:
                paths.update(self.plot(atlas, out, n_top=n_top))
        else:
            logger.warning("no atlas given: the SourceEstimate and figures are not written")
        top = self.top_regions(n_top)
        summary = {**attrs, "top_regions": [{"index": int(i), "name": names[i],
                                             "power": float(self.region_power()[i])} for i in top],
                   "files": {k: str(v) for k, v in paths.items()}}
        write_json(out / OUTPUT_FILES["report"], summary)
        paths["report"] = out / OUTPUT_FILES["report"]
        self.paths = paths
        return paths

    def plot(self, atlas, out_dir, *, n_top: int = 5) -> dict:
        """Power map on the cortex, top-region time courses, and a topomap of the input."""
        from .viz import _mpl, plot_cortex, plot_timecourses, save_figure

        plt = _mpl()
        out = Path(out_dir)
        paths = {}
        power = self.region_power()
        fig = plot_cortex(atlas, power / (power.max() or 1.0), cmap="YlOrRd", symmetric=False,
                          title=f"{self.model.get('name')}: mean power per region",
                          cbar_label="power / max (normalised)")
        paths["power_map"] = save_figure(fig, out / OUTPUT_FILES["power_map"], dpi=100)
        top = self.top_regions(n_top)
        kind = "network output" if self.model.get("kind") == "network" else self.model.get("name")
        fig = plot_timecourses(self.times, self.source[:, top],
                               [atlas.region_names[i] for i in top], ylabel=f"{kind} (a.u.)",
                               title=f"{len(top)} most active regions")
        paths["timecourses"] = save_figure(fig, out / OUTPUT_FILES["timecourses"], dpi=100)
        topo = self.plot_topomap(plt)
        if topo is not None:
            paths["topomap"] = save_figure(topo, out / OUTPUT_FILES["topomap"], dpi=100)
        return paths

    def plot_topomap(self, plt=None):
        """Topomap of the input EEG at its peak of global field power (None without positions)."""
        import mne

        from .viz import _mpl

        plt = plt or _mpl()
        info = self.prepared.info
        if info is None or info.get_montage() is None:
            logger.warning("the channels have no positions; no topomap")
            return None
        eeg = self.prepared.eeg
        peak = int(np.argmax(eeg.std(axis=1)))
        # scale-free data (units='none') are shown as they are, in a.u.; volts as µV
        volts = getattr(self.prepared.report, "units", "V") == "V"
        scale, unit = (1e6, "µV") if volts else (1.0, "a.u.")
        fig, ax = plt.subplots(figsize=(4.6, 4))
        im, _ = mne.viz.plot_topomap(eeg[peak] * scale, info, axes=ax, show=False,
                                     sphere=_head_sphere(info))
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"EEG, average reference ({unit})")
        ax.set_title(f"input EEG at {self.times[peak]:.3f} s (peak GFP)", fontsize=9)
        return fig


def load_result(path) -> dict:
    """Read a ``sources.h5`` written by :meth:`ImagingResult.save` (any format version).

    Returns
    -------
    dict
        ``source`` (n_times, n_sources), ``times`` (s), ``eeg`` (n_times, n_chans, V),
        ``region_power`` (n_sources,) and ``meta`` (sfreq, units, model, channels, realignment,
        region names, ...).
    """
    with open_h5_format(path, RESULT_FORMAT, what="imaging result (sources.h5)",
                        max_version=RESULT_FORMAT_VERSION,
                        legacy=lambda f: "source" in f and "model" in f.attrs) as f:
        meta = read_h5_attrs(f, json_keys=_RESULT_JSON_KEYS)
        return {**{k: f[k][()] for k in ("source", "times", "eeg", "region_power")},
                "meta": meta}


# entries of version 1 files stored as JSON text (the dicts and lists of ImagingResult.attrs)
_RESULT_JSON_KEYS = ("ch_names", "model", "realignment", "versions", "region_names")


def _head_sphere(info):
    """The head outline of a topomap: ``'eeglab'`` or (x, y, z, radius) in m.

    With Fpz, Oz, T7 and T8 present, MNE's ``'eeglab'`` convention: the outline passes through
    them, as clinicians expect (caps reaching below that ring, like DeepSIF's 75 channels with
    Nz, Iz, T9/T10, would otherwise put a third of the electrodes outside the head). Otherwise
    the sphere fitted to the positions (which may be in an atlas frame whose origin is not the
    head centre); None (MNE's default) with fewer than 4 positions.
    """
    from .leadfield import fit_sphere

    if {"Fpz", "Oz", "T7", "T8"} <= set(info["ch_names"]):
        return "eeglab"
    pos = np.array([ch["loc"][:3] for ch in info["chs"]], dtype=float)
    pos = pos[np.isfinite(pos).all(1) & (np.abs(pos).sum(1) > 0)]
    if len(pos) < 4:
        return None
    centre, radius = fit_sphere(pos)
    return (*(float(c) for c in centre), float(radius))


def _save_stc(stc, base: Path) -> dict:
    """``stc.save`` into a temporary folder, then move the files next to ``base``."""
    tmp = Path(tempfile.mkdtemp(prefix=".stc.", dir=base.parent))
    try:
        stc.save(tmp / base.name, ftype="stc", overwrite=True, verbose="error")
        out = {}
        for hemi in ("lh", "rh"):
            final = base.parent / f"{base.name}-{hemi}.stc"
            os.replace(tmp / f"{base.name}-{hemi}.stc", final)
            out[f"stc_{hemi}"] = final
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def image_recording(recording, model, **prepare_kwargs) -> ImagingResult:
    """Prepare ``recording`` for ``model`` and apply it.

    Parameters
    ----------
    recording : path | mne.io.Raw | mne.Epochs | mne.Evoked
    model : NetworkModel | ClassicalModel
        Or anything with ``ch_names``, ``sfreq`` and ``apply``.
    **prepare_kwargs
        Passed to :func:`lightbunny.io.prepare_recording` (``tmin``, ``tmax``, ``events``,
        ``l_freq``, ``h_freq``, ``missing``, ``min_matched``, ...).

    Returns
    -------
    ImagingResult
    """
    leadfield = getattr(model, "leadfield", None)
    if "positions" not in prepare_kwargs and leadfield is not None:
        _, unknown = _positions(model.ch_names, None)
        if unknown:  # names outside the 10-05 montage: interpolate on the leadfield's electrodes
            prepare_kwargs["positions"] = dict(zip(leadfield.ch_names, leadfield.ch_pos / 1000.0))
    prepared = prepare_recording(recording, model.ch_names, sfreq=model.sfreq, **prepare_kwargs)
    logger.info("realignment: %s", prepared.report.summary().replace("\n", "; "))
    source = np.asarray(model.apply(prepared.eeg), dtype=np.float64)
    if source.shape[0] != prepared.n_times:
        raise ValueError(f"the model returned {source.shape[0]} samples for {prepared.n_times}.")
    if not np.isfinite(source).all():
        raise ValueError("the model produced non-finite source values.")
    describe = model.describe() if hasattr(model, "describe") else {"name": type(model).__name__}
    return ImagingResult(source=read_only(source), prepared=prepared, model=describe,
                         units=getattr(model, "units", "a.u."))


def run_apply(recording, out_dir, *, checkpoint=None, method: str | None = None, atlas=None,
              montage=None, leadfield=None, snr: float = 3.0, overlap: float = 0.5,
              short: str = "pad", device: str = "cpu", data_dir=None, figures: bool = True,
              max_stc_times: int | None = 500, **prepare_kwargs) -> ImagingResult:
    """Image a recording with a checkpoint or a classical method and write all outputs.

    Parameters
    ----------
    recording : path | mne object
    out_dir : path
    checkpoint, method, atlas, montage, leadfield, snr, overlap, short, device, data_dir
        See :func:`load_source_model`.
    figures : bool
        Write the PNG figures.
    max_stc_times : int or None
        See :meth:`ImagingResult.to_stc`.
    **prepare_kwargs
        See :func:`lightbunny.io.prepare_recording`.

    Returns
    -------
    ImagingResult
        With ``paths`` of the written files.
    """
    from .atlas import Atlas, load_atlas

    model = load_source_model(checkpoint, method, atlas=atlas, montage=montage,
                              leadfield=leadfield, snr=snr, overlap=overlap, short=short,
                              device=device, data_dir=data_dir)
    result = image_recording(recording, model, **prepare_kwargs)
    if isinstance(atlas, Atlas):
        atlas_obj = atlas
    else:
        try:
            atlas_obj = load_atlas(model.atlas_name, data_dir=data_dir)
        except (ValueError, FileNotFoundError, ImportError) as err:
            logger.warning("atlas %r could not be loaded (%s): no SourceEstimate or figures",
                           model.atlas_name, err)
            atlas_obj = None
    result.save(out_dir, atlas_obj, figures=figures, max_stc_times=max_stc_times)
    return result


__all__ = ["ClassicalModel", "NetworkModel", "ImagingResult", "load_source_model", "load_result",
           "image_recording", "run_apply", "window_starts", "sliding_windows", "stitch_windows"]
