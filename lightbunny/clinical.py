"""Many recordings, one process: ``lightbunny apply`` as a clinical researcher runs it.

:func:`apply_many` reads the atlas, leadfield and every model once, then images each recording
(EDF/BDF/EEGLAB/BrainVision/FIF files, glob patterns, and MATLAB/NumPy arrays through
:mod:`lightbunny.external`; a 3-D array is one recording per segment) with each model, and
writes, per recording and model, the outputs of :meth:`lightbunny.apply.ImagingResult.save`
plus a readable page (``report.html``, ``regions.csv``), a comparison page per recording when
several models image it (``compare.html``), and one summary across recordings
(``summary.csv``, ``summary.md``, ``summary.json``).

Definitions used throughout (also written into every report):

* **source band** (optional): each region's time course is band-passed ``[lo, hi]`` Hz with a
  zero-phase FIR filter (:func:`mne.filter.filter_data`, MNE's defaults) *after* imaging; with
  ``envelope`` its Hilbert amplitude envelope is taken next. MNE's "filter longer than signal"
  warning is kept in the report, not swallowed.
* **power** of a region: the mean square over time of its (band-passed) time course, in the
  model's unit squared; **RMS** its square root; the **normalised power** divides by the largest
  region power of that recording (max = 1).
* **active regions**: regions whose normalised power is above Otsu's threshold of the normalised
  power map (:func:`lightbunny.metrics.otsu_threshold`, 100-bin histogram).
* **average over segments** (``average_segments``): per model, the normalised power maps of all
  recordings/segments are averaged (each segment weighs the same whatever its amplitude); the
  active regions of the average follow the same Otsu rule.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import html
import io as _io
import json
import warnings
from pathlib import Path

import numpy as np

from ._logging import logger
from .utils import atomic_path, read_only, write_json

POWER_DEFINITION = ("power = mean over time of the squared (band-passed) region time course; "
                    "RMS = its square root; normalised power = power / max over regions")
ACTIVE_RULE = "normalised power above Otsu's threshold (100-bin histogram) of the normalised map"


# --------------------------------------------------------------------------------------------
# Source-space processing
# --------------------------------------------------------------------------------------------


def filter_sources(source: np.ndarray, sfreq: float, band, *, envelope: bool = False):
    """Band-pass region time courses, optionally taking their amplitude envelope.

    Parameters
    ----------
    source : ndarray, shape (n_times, n_sources)
    sfreq : float, Hz
    band : (float or None, float or None), Hz
        Low and high edges (None: no filter on that side).
    envelope : bool
        Return ``|hilbert(filtered)|`` along time.

    Returns
    -------
    filtered : ndarray, shape (n_times, n_sources)
    notes : list of str
        Warnings MNE raised (e.g. the filter being longer than the signal).
    """
    import mne

    lo, hi = band
    nyq = sfreq / 2.0
    if lo is not None and not 0 < lo < nyq:
        raise ValueError(f"source band low edge ({lo} Hz) must lie in (0, {nyq:g}) Hz.")
    if hi is not None and not (0 < hi < nyq and (lo is None or hi > lo)):
        raise ValueError(f"source band high edge ({hi} Hz) must lie above the low edge and "
                         f"below the Nyquist frequency ({nyq:g} Hz).")
    data = np.ascontiguousarray(np.asarray(source, dtype=np.float64).T)
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = mne.filter.filter_data(data, sfreq, lo, hi, method="fir", phase="zero",
                                     verbose="error")
    for w in caught:
        notes.append(f"source band-pass {lo}-{hi} Hz: {w.message}")
    n_filter = _filter_length(sfreq, lo, hi)
    if n_filter is not None and n_filter > data.shape[1]:
        notes.append(f"source band-pass {lo}-{hi} Hz: the filter ({n_filter} samples, "
                     f"{n_filter / sfreq:.2f} s) is longer than the signal ({data.shape[1]} "
                     f"samples); edges are distorted and low frequencies poorly resolved")
    for note in notes:
        logger.warning(note)
    if envelope:
        from scipy.signal import hilbert

        out = np.abs(hilbert(out, axis=1))
    return out.T, notes


def _filter_length(sfreq, lo, hi):
    try:
        import mne

        h = mne.filter.create_filter(None, sfreq, lo, hi, method="fir", phase="zero",
                                     verbose="error")
        return int(len(h))
    except Exception:  # only used for a note
        return None


def region_power(source: np.ndarray) -> np.ndarray:
    """Mean square over time of each region, shape (n_sources,) (see :data:`POWER_DEFINITION`)."""
    return np.mean(np.asarray(source, dtype=np.float64) ** 2, axis=0)


def normalise_power(power: np.ndarray) -> np.ndarray:
    """``power / max(power)`` (all zeros stay zeros)."""
    power = np.asarray(power, dtype=np.float64)
    peak = power.max() if power.size else 0.0
    return power / peak if peak > 0 else np.zeros_like(power)


def active_regions(norm_power: np.ndarray):
    """Regions above Otsu's threshold of a normalised power map (see :data:`ACTIVE_RULE`).

    Returns
    -------
    regions : ndarray of int
        Strongest first.
    threshold : float
    """
    from .metrics import otsu_threshold

    norm_power = np.asarray(norm_power, dtype=np.float64)
    thr = float(otsu_threshold(norm_power))
    idx = np.flatnonzero(norm_power > thr)
    return idx[np.argsort(norm_power[idx])[::-1]], thr


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def expand_recordings(recordings) -> list:
    """Paths of ``recordings``: glob patterns expanded (sorted), BIDS folders searched
    (:func:`bids_recordings`); each must exist.

    Raises
    ------
    FileNotFoundError
        A pattern matches nothing, or a path does not exist.
    """
    out = []
    for rec in ([recordings] if isinstance(recordings, (str, Path)) else recordings):
        if not isinstance(rec, (str, Path)):
            out.append(rec)
            continue
        text = str(rec)
        if any(c in text for c in "*?["):
            found = sorted(glob.glob(text))
            if not found:
                raise FileNotFoundError(f"No recording matches {text!r}.")
            out.extend(Path(f) for f in found)
        elif Path(text).is_dir():
            out.extend(bids_recordings(text))
        else:
            if not Path(text).exists():
                raise FileNotFoundError(f"No EEG recording at {text}.")
            out.append(Path(text))
    if not out:
        raise ValueError("No recordings given.")
    return out


def bids_recordings(root) -> list:
    """EEG files of a BIDS dataset: ``sub-*/[ses-*/]eeg/*_eeg.<ext>``, sorted.

    ``root`` must hold ``dataset_description.json``. Files are found by the BIDS layout alone
    (no mne-bids needed); each is then read like any other file (the BIDS sidecars, e.g.
    ``channels.tsv`` bad channels, are not read).

    Raises
    ------
    ValueError
        ``root`` is not a BIDS folder, or holds no EEG file of a readable type.
    """
    from .io import READERS

    root = Path(root)
    if not (root / "dataset_description.json").is_file():
        raise ValueError(f"{root} is a folder but not a BIDS dataset (no "
                         f"dataset_description.json); give files or a glob pattern instead.")
    found = sorted(p for p in root.glob("sub-*/**/eeg/*_eeg.*")
                   if any(p.name.lower().endswith(ext) for ext in READERS if ext != ".fif.gz"))
    if not found:
        raise ValueError(f"No EEG recording (sub-*/[ses-*/]eeg/*_eeg.{{edf,bdf,set,vhdr,fif}}) "
                         f"in the BIDS folder {root}.")
    logger.info("BIDS folder %s: %d EEG recording(s)", root, len(found))
    return found


def _recording_items(rec, *, sfreq, ch_names, montage, data_dir, variable):
    """(label, recording) pairs: a file path, an MNE object, or the segments of an array file."""
    from .external import is_array_file, read_array_recording

    if isinstance(rec, Path) and is_array_file(rec):
        return read_array_recording(rec, sfreq=sfreq, ch_names=ch_names, montage=montage,
                                    data_dir=data_dir, variable=variable)
    label = rec.name if isinstance(rec, Path) else type(rec).__name__
    return [(label, rec)]


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.#" else "_" for c in label).replace("#", "_seg")


# --------------------------------------------------------------------------------------------
# The batch
# --------------------------------------------------------------------------------------------


def apply_many(recordings, out_dir, *, checkpoints=(), methods=(), atlas=None, montage=None,
               leadfield=None, data_dir=None, sfreq: float | None = None, ch_names=None,
               variable: str | None = None, source_band=None, envelope: bool = False,
               average_segments: bool = False, snr: float = 3.0, overlap: float = 0.5,
               short: str = "pad", device: str = "cpu", figures: bool = True,
               n_top: int = 10, max_stc_times: int | None = 500, **prepare_kwargs) -> dict:
    """Image every recording with every model, in one process; write reports and a summary.

    Parameters
    ----------
    recordings : sequence of path | str | mne object
        Files (glob patterns expanded), or MNE objects.
    out_dir : path
        One recording and one model: outputs go straight into it; otherwise into
        ``out_dir/<recording>/<model>/`` (the model level only with several models).
    checkpoints : sequence of path
        Trained networks.
    methods : sequence of str
        Classical inverses (``'sLORETA'``, ...). At least one model in all.
    atlas : str or Atlas, optional
        Default: the checkpoint's, the atlas of a region-level imported leadfield (by its
        number of regions), or ``'tvb76'``.
    montage : str or list of str, optional
        Leadfield montage of classical methods, channel names of array files (unless
        ``ch_names``), and electrode positions of networks.
    leadfield : Leadfield or path, optional
        ``.h5``, or a file imported by :func:`lightbunny.external.load_leadfield_file`.
    data_dir : path, optional
        fsaverage994 data folder.
    sfreq : float, Hz, optional
        Rate of array files.
    ch_names : sequence of str, optional
        Row names of array files (instead of ``montage``).
    variable : str, optional
        Array name inside ``.mat`` / ``.npz`` files.
    source_band : (float, float), optional
        Band-pass of the source time courses, Hz (see the module docstring).
    envelope : bool
        Amplitude envelope after the band-pass.
    average_segments : bool
        Also write the average of the normalised power maps per model (``average/``).
    snr, overlap, short, device
        See :func:`lightbunny.apply.load_source_model`.
    figures : bool
    n_top : int
        Regions listed in each report.
    **prepare_kwargs
        See :func:`lightbunny.io.prepare_recording` (``units``, ``tmin``, ``missing``, ...).

    Returns
    -------
    dict
        ``rows`` (one per recording and model), ``summary_csv``, ``summary_md``, ``average``
        (model -> dict, with ``average_segments``), ``results`` ((label, model) -> ImagingResult),
        ``failed`` (recordings that could not be read or imaged, with the error; with several
        recordings they are skipped and listed, a single recording raises).
    """
    from .regions import coordinate_note, region_table

    checkpoints, methods = list(checkpoints or ()), list(methods or ())
    if not checkpoints and not methods:
        raise ValueError("Give at least one model: a checkpoint (--checkpoint) or a classical "
                         "method (--method).")
    if envelope and source_band is None:
        raise ValueError("envelope needs a source band (--source-band LO HI): the envelope is "
                         "taken of the band-passed source time courses.")
    recs = expand_recordings(recordings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # -- atlas, leadfield and models: once
    atlas_obj = _resolve_atlas(atlas, checkpoints, leadfield, data_dir)
    lf = _load_leadfield(leadfield, atlas_obj, montage, ch_names, data_dir)
    models = _load_models(methods, checkpoints, atlas_obj, montage, lf, snr=snr, overlap=overlap,
                          short=short, device=device, data_dir=data_dir)
    labels = _model_labels(models)
    regions = region_table(atlas_obj)
    inflated = inflated_atlas(atlas_obj) if figures else None
    note = coordinate_note(atlas_obj)

    # -- recordings; one that cannot be read or imaged is reported and skipped when there are
    # several
    failed = []
    items = _read_items(recs, failed, sfreq=sfreq, ch_names=ch_names,
                        montage=montage if ch_names is None else None, data_dir=data_dir,
                        variable=variable)
    single = len(items) == 1 and len(models) == 1 and len(recs) == 1
    ctx = {"atlas": atlas_obj, "regions": regions, "inflated": inflated, "note": note,
           "band": {"source_band": source_band, "envelope": envelope},
           "saving": {"figures": figures, "max_stc_times": max_stc_times, "n_top": n_top},
           "prepare": prepare_kwargs}
    rows, results, norm_maps = _image_items(items, models, labels, out, single, ctx, failed)
    summary = _write_summary(out, rows, note, failed)
    average = _write_averages(out, norm_maps, atlas_obj, regions, n_top, figures) \
        if average_segments else {}
    return {"rows": rows, **summary, "average": average, "results": results, "models": labels,
            "failed": failed}


def _image_items(items, models, labels, out: Path, single: bool, ctx: dict, failed: list):
    """Every (recording, model) pair imaged and written: summary rows, results and each
    model's normalised power maps. Outside a single pair, a failure is logged, listed in
    ``failed`` and skipped."""
    rows, results, norm_maps = [], {}, {lab: [] for lab in labels}
    for rec_label, rec in items:
        rec_dir = out if single else out / _safe(rec_label)
        per_rec = {}
        for model, mlabel in zip(models, labels):
            d = rec_dir if (single or len(models) == 1) else rec_dir / _safe(mlabel)
            logger.info("imaging %s with %s", rec_label, mlabel)
            try:
                res, info = _image_and_report(rec, model, mlabel, rec_label, d, ctx)
            except (ValueError, FileNotFoundError, OSError) as err:
                if single:
                    raise
                logger.error("%s with %s skipped: %s", rec_label, mlabel, err)
                failed.append({"recording": rec_label, "model": mlabel, "error": str(err)})
                continue
            norm_maps[mlabel].append(info.pop("_norm_power"))
            rows.append(_summary_row(info))
            per_rec[mlabel] = info
            results[(rec_label, mlabel)] = res
        if len(per_rec) > 1:
            _write_compare(rec_dir, rec_label, per_rec)
    return rows, results, norm_maps


def _load_leadfield(leadfield, atlas_obj, montage, ch_names, data_dir):
    """``leadfield`` as a :class:`~lightbunny.leadfield.Leadfield` (None stays None)."""
    if leadfield is None:
        return None
    from .external import load_leadfield_file
    from .leadfield import Leadfield

    if isinstance(leadfield, Leadfield):
        return leadfield
    return load_leadfield_file(leadfield, atlas_obj,
                               ch_names=None if montage is not None else ch_names,
                               montage=montage, data_dir=data_dir, variable=None)


def _load_models(methods, checkpoints, atlas_obj, montage, lf, *, snr, overlap, short, device,
                 data_dir) -> list:
    """The classical methods, then the networks, each loaded once."""
    from .apply import load_source_model

    models = []
    for m in methods:
        models.append(load_source_model(method=m, atlas=atlas_obj, montage=montage, leadfield=lf,
                                        snr=snr, data_dir=data_dir))
    for c in checkpoints:
        models.append(load_source_model(c, atlas=atlas_obj, montage=montage if lf is None else None,
                                        leadfield=lf, overlap=overlap, short=short,
                                        device=device, data_dir=data_dir))
    return models


def _read_items(recs, failed: list, **kwargs) -> list:
    """(label, recording) pairs of every recording; with several recordings, one that cannot be
    read is logged, listed in ``failed`` and skipped."""
    items = []
    for rec in recs:
        try:
            items.extend(_recording_items(rec, **kwargs))
        except (ValueError, FileNotFoundError, OSError) as err:
            if len(recs) == 1:
                raise
            label = rec.name if isinstance(rec, Path) else type(rec).__name__
            logger.error("%s skipped: %s", label, err)
            failed.append({"recording": label, "model": "", "error": str(err)})
    return items


def _band_sources(res, source_band, envelope: bool):
    """``res`` with its source time courses band-passed (and enveloped), and the notes."""
    if source_band is None:
        return res, []
    filtered, notes = filter_sources(res.source, res.sfreq, source_band, envelope=envelope)
    what = f"band-passed {source_band[0]}-{source_band[1]} Hz" + (
        ", amplitude envelope" if envelope else "")
    res = dataclasses.replace(res, source=read_only(filtered), units=f"{res.units}, {what}")
    res.prepared.report.steps.append(f"source time courses {what}")
    res.prepared.report.warnings.extend(notes)
    return res, notes


def _image_and_report(rec, model, mlabel, rec_label, d, ctx: dict):
    """Image one recording with one model and write its outputs into ``d``; the result and
    its description (a summary row's source). ``ctx``: what every pair shares."""
    from .apply import image_recording

    res = image_recording(rec, model, **ctx["prepare"])
    source_band, envelope = ctx["band"]["source_band"], ctx["band"]["envelope"]
    res, notes = _band_sources(res, source_band, envelope)
    figures = ctx["saving"]["figures"]
    res.save(d, ctx["atlas"], **ctx["saving"])
    if figures and ctx["inflated"] is not None:
        _plot_inflated(ctx["inflated"], res, mlabel, d / "inflated_map.png")
    info = _describe_result(res, ctx["regions"], ctx["saving"]["n_top"])
    info.update(recording=rec_label, model=mlabel, dir=str(d), notes=notes,
                source_band=list(source_band) if source_band else None,
                envelope=bool(envelope))
    _write_region_report(d, info, res, ctx["atlas"], ctx["note"], figures)
    return res, info


def _write_averages(out: Path, norm_maps: dict, atlas_obj, regions, n_top, figures) -> dict:
    """The average normalised power map of each model over the segments (``average/``)."""
    average = {}
    for mlabel, maps in norm_maps.items():
        if not maps:
            continue
        average[mlabel] = _write_average(out / "average" / _safe(mlabel), mlabel, maps,
                                         atlas_obj, regions, n_top, figures)
    write_json(out / "average" / "average.json", average)
    return average


def inflated_atlas(atlas):
    """``atlas`` on nilearn's inflated fsaverage5 surface (fsaverage994 only; else None).

    The inflated surface has the pial surface's vertices in the same order, so regions map
    unchanged; only positions differ (for display).
    """
    if atlas.name != "fsaverage994" or atlas.n_vertices != 20484:
        return None
    try:
        from nilearn import datasets, surface

        fs = datasets.fetch_surf_fsaverage("fsaverage5")
        coords = [surface.load_surf_mesh(fs[f"infl_{h}"]).coordinates for h in ("left", "right")]
    except Exception as err:  # a display extra: never fatal
        logger.info("no inflated surface (%s)", err)
        return None
    verts = np.vstack(coords).astype(np.float64)
    # the two inflated hemispheres overlap at the midline: pull them apart by 10 mm for display
    verts[: len(coords[0]), 0] -= 10.0
    verts[len(coords[0]):, 0] += 10.0
    return dataclasses.replace(atlas, vertices=verts)


def _plot_inflated(inflated, res, mlabel, path):
    from .viz import plot_cortex, save_figure

    fig = plot_cortex(inflated, region_power(res.source), cmap="YlOrRd", symmetric=False,
                      title=f"{mlabel}: mean power per region (inflated cortex)")
    save_figure(fig, path, dpi=100)


def _resolve_atlas(atlas, checkpoints, leadfield, data_dir):
    from .atlas import Atlas, load_atlas

    if isinstance(atlas, Atlas):
        return atlas
    if atlas is None and checkpoints:
        from .inference import load_checkpoint

        ckpt = load_checkpoint(checkpoints[0])
        meta = ckpt.get("meta") or {}
        atlas = meta.get("atlas") or (meta.get("preprocessing") or {}).get("atlas_name")
    if atlas is None and leadfield is not None and not isinstance(leadfield, (str, Path)):
        atlas = leadfield.atlas_name
    if atlas is None and leadfield is not None and not str(leadfield).endswith(".h5"):
        atlas = _atlas_from_region_count(leadfield)
    return load_atlas(atlas or "tvb76", data_dir=data_dir)


def _atlas_from_region_count(path):
    """The atlas whose region count is a dimension of an imported region-level leadfield."""
    from .external import LEADFIELD_VARIABLES, is_array_file, read_array_file

    if not is_array_file(path):
        return None
    try:
        arr, _ = read_array_file(path, prefer=LEADFIELD_VARIABLES)
    except (ValueError, FileNotFoundError):
        return None
    for name, n in (("fsaverage994", 994), ("tvb76", 76)):
        if n in arr.shape:
            logger.info("%s has %d columns: atlas %s", path, n, name)
            return name
    return None


def _model_labels(models) -> list:
    """A unique label per model: its name, numbered from the second of the same name."""
    labels, seen = [], {}
    for m in models:
        base = str(m.name)
        seen[base] = seen.get(base, 0) + 1
        labels.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return labels


def _describe_result(res, regions, n_top) -> dict:
    power = region_power(res.source)
    norm = normalise_power(power)
    active, thr = active_regions(norm)
    top = np.argsort(power)[::-1][:n_top]
    rep = res.prepared.report

    def row(r):
        return {**regions[int(r)], "power": float(power[r]), "rms": float(np.sqrt(power[r])),
                "normalised_power": float(norm[r])}

    return {"n_times": int(res.source.shape[0]), "sfreq": float(res.sfreq),
            "duration_s": float(res.source.shape[0] / res.sfreq), "units": res.units,
            "eeg_units": rep.units, "power_definition": POWER_DEFINITION,
            "active_rule": ACTIVE_RULE, "otsu_threshold": thr,
            "top_regions": [row(r) for r in top],
            "active_regions": [row(r) for r in active],
            "channels_matched": len(rep.matched), "channels_model": len(rep.target),
            "interpolated": list(rep.interpolated), "zero_filled": list(rep.zero_filled),
            "unit_scale": rep.unit_scale, "warnings": list(rep.warnings),
            "_norm_power": norm}


def _summary_row(info) -> dict:
    top = info["top_regions"][0] if info["top_regions"] else {}
    coords = top.get("mni152_mm") or top.get("centre_mm") or ["", "", ""]
    return {"recording": info["recording"], "model": info["model"],
            "duration_s": round(info["duration_s"], 3), "sfreq_hz": info["sfreq"],
            "top_region": top.get("name", ""), "label": top.get("label", ""),
            "lobe": top.get("lobe", ""), "hemisphere": top.get("hemisphere", ""),
            "x_mm": coords[0], "y_mm": coords[1], "z_mm": coords[2],
            "coordinates": "MNI152" if top.get("mni152_mm") else "atlas RAS",
            "n_active": len(info["active_regions"]),
            "active_regions": " ".join(r["name"] for r in info["active_regions"][:20]),
            "channels": f"{info['channels_matched']}/{info['channels_model']}",
            "interpolated": len(info["interpolated"]), "n_warnings": len(info["warnings"]),
            "dir": info["dir"]}


def _write_summary(out: Path, rows, coord_note, failed=()) -> dict:
    fields = list(rows[0]) if rows else ["recording", "model"]
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    with atomic_path(out / "summary.csv") as tmp:
        Path(tmp).write_text(buf.getvalue())
    cols = [c for c in fields if c not in ("dir", "active_regions")]
    md = ["# Source imaging summary", "", f"{len(rows)} recording x model result(s). "
          f"{POWER_DEFINITION}. Active regions: {ACTIVE_RULE}. {coord_note}", "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    if failed:
        md += ["", f"## Not imaged ({len(failed)})", ""]
        md += [f"- {f['recording']}{' / ' + f['model'] if f['model'] else ''}: {f['error']}"
               for f in failed]
    with atomic_path(out / "summary.md") as tmp:
        Path(tmp).write_text("\n".join(md) + "\n")
    write_json(out / "summary.json", {"rows": rows, "failed": list(failed),
                                      "power_definition": POWER_DEFINITION,
                                      "active_rule": ACTIVE_RULE, "coordinates": coord_note})
    return {"summary_csv": out / "summary.csv", "summary_md": out / "summary.md"}


def _region_rows_html(rows) -> str:
    def fmt(v):
        return ", ".join(f"{x:g}" for x in v) if isinstance(v, list) else html.escape(str(v))

    cols = [("name", "region"), ("label", "anatomical label"), ("lobe", "lobe"),
            ("hemisphere", "hemisphere (from vertices)"), ("brodmann", "Brodmann (PALS-B12)"),
            ("mni152_mm", "MNI152 (mm)"), ("centre_mm", "atlas / fsaverage RAS (mm)"),
            ("normalised_power", "normalised power"), ("rms", "RMS")]
    head = "".join(f"<th>{h}</th>" for _, h in cols)
    body = "".join("<tr>" + "".join(
        f"<td>{fmt(round(r[k], 3) if isinstance(r.get(k), float) else r.get(k, ''))}</td>"
        for k, _ in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(path: Path, width: str = "100%") -> str:
    import base64

    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img src='data:image/png;base64,{data}' style='max-width:{width}'>"


_STYLE = ("<style>body{font-family:sans-serif;margin:2em;max-width:1300px} td,th{border:1px "
          "solid #bbb;padding:3px 6px} table{border-collapse:collapse;font-size:13px} "
          ".row{display:flex;gap:1em;flex-wrap:wrap}</style>")


def _write_region_report(d: Path, info, res, atlas, coord_note, figures) -> None:
    rows = ["recording", "model", "duration_s", "sfreq", "units", "eeg_units", "otsu_threshold"]
    regions_csv = d / "regions.csv"
    keys = ["index", "name", "label", "lobe", "hemisphere", "name_ok", "brodmann",
            "centre_mm", "nearest_vertex_mm", "mni152_mm", "power", "rms", "normalised_power"]
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys + ["active"])
    active = {r["index"] for r in info["active_regions"]}
    for r in info["top_regions"] + [a for a in info["active_regions"]
                                    if a["index"] not in {t["index"] for t in info["top_regions"]}]:
        w.writerow([" ".join(map(str, r[k])) if isinstance(r.get(k), list) else r.get(k, "")
                    for k in keys] + [r["index"] in active])
    with atomic_path(regions_csv) as tmp:
        Path(tmp).write_text(buf.getvalue())
    report = json.loads((d / "report.json").read_text())
    report.update({k: v for k, v in info.items() if not k.startswith("_")})
    write_json(d / "report.json", report)
    facts = "".join(f"<tr><th>{k}</th><td>{html.escape(str(info[k]))}</td></tr>" for k in rows)
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in info["warnings"]) or "<li>none</li>"
    maps = _img(d / 'power_map.png', '60%') + _img(d / 'inflated_map.png', '60%')
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>{html.escape(info['recording'])}: {html.escape(info['model'])}</title>{_STYLE}</head><body>
<h1>{html.escape(info['recording'])} — {html.escape(info['model'])}</h1>
<table>{facts}</table>
<p>{html.escape(POWER_DEFINITION)}. Active regions: {html.escape(ACTIVE_RULE)}
(threshold {info['otsu_threshold']:.3f}); {len(info['active_regions'])} active.
{html.escape(coord_note)} Hemisphere is read from the region's vertices, not its name.</p>
<h2>Most active regions</h2>{_region_rows_html(info['top_regions'])}
<h2>Active regions (Otsu)</h2>{_region_rows_html(info['active_regions'])}
<h2>Figures</h2><div class="row">{maps}
{_img(d / 'topomap.png', '30%')}</div>{_img(d / 'timecourses.png', '80%')}
<h2>Warnings</h2><ul>{warn}</ul>
<p>Channels: {info['channels_matched']} of {info['channels_model']} found; interpolated
{html.escape(', '.join(info['interpolated']) or 'none')}. Files: sources.h5, sources.csv,
sources-lh/rh.stc, regions.csv, report.json.</p></body></html>"""
    with atomic_path(d / "report.html") as tmp:
        Path(tmp).write_text(page)


def _write_compare(rec_dir: Path, rec_label: str, per_rec: dict) -> None:
    cells = []
    for mlabel, info in per_rec.items():
        d = Path(info["dir"])
        top = "".join(f"<li>{html.escape(r['name'])} ({html.escape(r['label'] or r['lobe'])}, "
                      f"{r['hemisphere']})</li>" for r in info["top_regions"][:3])
        cells.append(f"<div><h3><a href='{html.escape(d.name)}/report.html'>"
                     f"{html.escape(mlabel)}</a></h3>{_img(d / 'power_map.png', '420px')}<br>"
                     f"{_img(d / 'topomap.png', '200px')}<ol>{top}</ol>"
                     f"<p>{len(info['active_regions'])} active regions</p></div>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(rec_label)}"
            f"</title>{_STYLE}</head><body><h1>{html.escape(rec_label)}: methods compared</h1>"
            f"<p>{html.escape(POWER_DEFINITION)}. Active: {html.escape(ACTIVE_RULE)}.</p>"
            f"<div class='row'>{''.join(cells)}</div></body></html>")
    with atomic_path(rec_dir / "compare.html") as tmp:
        Path(tmp).write_text(page)


def _write_average(d: Path, mlabel, maps, atlas, regions, n_top, figures) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    mean = np.mean(np.stack(maps), axis=0)
    active, thr = active_regions(normalise_power(mean))
    top = np.argsort(mean)[::-1][:n_top]
    np.savetxt(d / "average_normalised_power.csv", np.column_stack([np.arange(len(mean)), mean]),
               delimiter=",", header="region,mean_normalised_power", comments="", fmt="%.8g")
    result = {"model": mlabel, "n_segments": len(maps),
              "definition": "mean over segments of each segment's normalised power map "
                            f"({POWER_DEFINITION})",
              "active_rule": ACTIVE_RULE + " (applied to the average, renormalised to max 1)",
              "otsu_threshold": thr,
              "top_regions": [{**regions[int(r)], "mean_normalised_power": float(mean[r])}
                              for r in top],
              "active_regions": [regions[int(r)]["name"] for r in active]}
    if figures:
        from .viz import plot_cortex, save_figure

        fig = plot_cortex(atlas, mean, cmap="YlOrRd", symmetric=False,
                          title=f"{mlabel}: mean normalised power over {len(maps)} segment(s)")
        save_figure(fig, d / "power_map.png", dpi=100)
    write_json(d / "average.json", result)
    return result


__all__ = ["POWER_DEFINITION", "ACTIVE_RULE", "filter_sources", "region_power",
           "normalise_power", "active_regions", "expand_recordings", "bids_recordings",
           "apply_many"]
