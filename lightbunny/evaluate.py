"""Compare source-imaging methods, learned and classical, on identical simulated samples.

:func:`evaluate` builds, for each SNR, the test dataset with a fixed seed (so every method sees
the same EEG for a given sample), applies every method through the package's one contract
(EEG (n_times, n_chans) -> sources (n_times, n_regions)), scores each sample with
:func:`lightbunny.metrics.sample_metrics` and writes:

``per_sample.csv``
    one row per (method, SNR, sample) with every metric;
``summary.csv`` / ``summary.md``
    mean ± sd, median and count per method × metric × SNR (sums and counts, no mean of means);
``figures/``
    box plots per metric, and for a few samples the truth next to every method on the cortex
    (power, lateral and medial views of both hemispheres) and the time course at the true
    centre;
``report.html``
    one self-contained page (figures embedded) holding all of the above;
``evaluation.json``
    every parameter (files, methods, SNRs, seeds, versions).
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np

from ._logging import logger
from .utils import atomic_path, check_option, versions, write_csv, write_json

CLASSICAL_METHODS = ("sloreta", "eloreta", "mne", "dspm", "lcmv")
DEFAULT_METHODS = ("sloreta", "eloreta", "mne", "dspm")
DEFAULT_SNRS = (5.0, 10.0, 15.0, 20.0)
#: Metrics shown in the summary and box plots, with the direction that is better.
REPORT_METRICS = {
    "localisation_error": "lower", "peak_error": "lower", "spatial_dispersion": "lower",
    "precision": "higher", "recall": "higher", "roc_auc": "higher",
    "temporal_pcc_centre": "higher", "temporal_pcc_patch": "higher", "spatial_pcc": "higher",
    "nmse": "lower",
}
#: What each metric measures, with its unit (y labels of the box plots).
METRIC_UNITS = {
    "localisation_error": "distance (mm)", "peak_error": "distance (mm)",
    "spatial_dispersion": "distance (mm)", "precision": "fraction of regions (0-1)",
    "recall": "fraction of regions (0-1)", "roc_auc": "area under ROC (0-1)",
    "temporal_pcc_centre": "correlation (-1 to 1)", "temporal_pcc_patch": "correlation (-1 to 1)",
    "spatial_pcc": "correlation (-1 to 1)", "nmse": "normalised MSE (no unit)",
}


class _Method:
    """A named callable mapping EEG batches (b, n_times, n_chans) to (b, n_times, n_regions)."""

    def __init__(self, name, apply_batch, kind):
        self.name, self.apply_batch, self.kind = name, apply_batch, kind


#: Regularisation SNR (dB) of the classical methods on noiseless data (``snr = inf``).
NOISELESS_REGULARISATION_DB = 40.0


def _classical(name: str, leadfield, snr_db: float) -> _Method:
    from .inverse import make_inverse

    # MNE's regularisation: lambda2 = 1 / SNR^2 with SNR the amplitude ratio of the data
    if not math.isfinite(snr_db):
        snr_db = NOISELESS_REGULARISATION_DB
    snr = 10.0 ** (snr_db / 20.0)
    solver = make_inverse(name, leadfield.gain, leadfield.ch_names, snr=snr)
    return _Method(name, lambda eeg: np.stack([solver.apply(e) for e in eeg]), "classical")


def _learned(path, expected_meta: dict, device) -> _Method:
    import torch

    from .inference import NORMALISATION, checkpoint_normalisation, load_model

    model, ckpt = load_model(path, expected_meta=expected_meta, device=device)
    if checkpoint_normalisation(ckpt["meta"]) != NORMALISATION:  # the test EEG's scaling
        raise ValueError(f"{path} was trained on EEG scaled otherwise than the test samples "
                         f"({NORMALISATION!r}).")
    name = f"{ckpt['model_name']}:{Path(path).parent.name or Path(path).stem}"

    @torch.no_grad()
    def apply(eeg):
        x = torch.as_tensor(np.ascontiguousarray(eeg), dtype=torch.float32, device=device)
        return model(x).float().cpu().numpy()

    return _Method(name, apply, "learned")


def _describe(leadfield) -> dict:
    return {"atlas": leadfield.atlas_name, "montage": leadfield.montage,
            "n_chans": leadfield.n_chans, "head_model": leadfield.head_model,
            "orientation": leadfield.orientation,
            "jitter_mm": leadfield.attrs.get("jitter_mm", 0.0),
            "conductivity_S_per_m": leadfield.attrs.get("conductivity_S_per_m")}


def evaluate(sources, bank, leadfield, atlas, *, out_dir, methods=DEFAULT_METHODS,
             checkpoints=(), snrs=DEFAULT_SNRS, n_samples: int | None = None, seed: int = 0,
             batch_size: int = 16, n_figure_samples: int = 3, device: str = "cpu",
             dataset_kwargs: dict | None = None, inverse_leadfield=None,
             progress: bool = True) -> dict:
    """Score classical methods and trained checkpoints on the same test samples.

    Parameters
    ----------
    sources : Sources or path
        Test sources file (:func:`lightbunny.sources.make_sources` with ``split='test'``).
    bank : SpikeBank or path
    leadfield : Leadfield
        The region leadfield used to simulate the EEG (and, unless ``inverse_leadfield`` is
        given, by the classical methods).
    atlas : Atlas
        For region distances and cortex figures; must match the leadfield.
    out_dir : path
    methods : sequence of str
        Classical methods (:data:`CLASSICAL_METHODS`).
    checkpoints : sequence of path or str
        Trained checkpoints (:func:`lightbunny.train.train`) or model names
        (:func:`lightbunny.inference.list_models`); each must have been trained on this atlas
        and channel set.
    snrs : sequence of float, dB
        Sensor SNRs; each gets its own pass over the same samples. ``inf`` means no sensor
        noise (the seed's setting); classical methods are then regularised at
        :data:`NOISELESS_REGULARISATION_DB`.
    n_samples : int, optional
        Evaluate the first ``n_samples`` samples only.
    seed : int
        Dataset seed: sample ``i`` at a given SNR is identical for every method.
    dataset_kwargs : dict, optional
        Extra options of :class:`lightbunny.dataset.SyntheticEEGDataset` (e.g. ``recipe``).
    inverse_leadfield : Leadfield, optional
        Head-model mismatch: the classical methods invert with this leadfield (e.g. a sphere
        model while the EEG is simulated with the BEM, or jittered electrodes) while the EEG is
        simulated with ``leadfield``. Same atlas and channel names, in the same order. Trained
        networks meet the same simulated EEG (their own head model is the one they were
        trained with).

    Returns
    -------
    dict
        Paths of the files written (``per_sample``, ``summary_csv``, ``summary_md``,
        ``report``) and the ``summary`` rows.
    """
    from tqdm.auto import tqdm

    from .dataset import SyntheticEEGDataset
    from .metrics import sample_metrics
    from .sources import Sources, load_sources

    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    if not isinstance(sources, Sources):
        sources = load_sources(sources)
    if atlas.name != leadfield.atlas_name or atlas.n_regions != leadfield.n_regions:
        raise ValueError(f"atlas {atlas.name!r} ({atlas.n_regions} regions) does not match the "
                         f"leadfield's {leadfield.atlas_name!r} ({leadfield.n_regions} regions)")
    inverse_leadfield = leadfield if inverse_leadfield is None else inverse_leadfield
    if (inverse_leadfield.atlas_name != leadfield.atlas_name
            or list(inverse_leadfield.ch_names) != list(leadfield.ch_names)):
        raise ValueError(f"inverse_leadfield ({inverse_leadfield.atlas_name}, "
                         f"{inverse_leadfield.n_chans} channels) must have the atlas and the "
                         f"channel names, in order, of the simulating leadfield "
                         f"({leadfield.atlas_name}, {leadfield.n_chans} channels)")
    methods = [m.lower() for m in methods]
    for m in methods:
        check_option("method", m, CLASSICAL_METHODS)
    if not methods and not checkpoints:
        raise ValueError("Nothing to evaluate: give at least one method or checkpoint.")
    snrs = [float(s) for s in snrs]
    if not snrs or any(math.isnan(s) for s in snrs):
        raise ValueError(f"snrs must be numbers in dB (inf for no sensor noise), got {snrs}.")
    expected = {"atlas": atlas.name, "ch_names": list(leadfield.ch_names)}
    from .utils import resolve_device

    device = resolve_device(device)
    learned = [_learned(p, expected, device) for p in checkpoints]
    datasets = {snr: SyntheticEEGDataset(sources, bank, leadfield, seed=seed,
                                         snr_db=[snr] if math.isfinite(snr) else None,
                                         **(dataset_kwargs or {})) for snr in snrs}
    n_items = len(datasets[snrs[0]])  # items left after samples without clips are skipped
    n_total = n_items if n_samples is None else min(int(n_samples), n_items)
    if n_total < 1:
        raise ValueError("The sources file has no samples to evaluate (none has a spike clip "
                         "in the bank's clip set for this split).")
    indices = np.arange(n_total)
    rows, examples = [], {}
    fig_snr = snrs[len(snrs) // 2]
    fig_idx = set(indices[:n_figure_samples].tolist())
    bar = tqdm(total=n_total * len(snrs), desc="evaluate", unit="sample", disable=not progress)
    for snr in snrs:
        ds = datasets[snr]
        runners = [_classical(m, inverse_leadfield, snr) for m in methods] + learned
        for start in range(0, n_total, batch_size):
            idx = indices[start:start + batch_size]
            eeg, target = ds.get_batch(idx)
            eeg, target = eeg.cpu().numpy(), target.cpu().numpy()
            preds = {r.name: r.apply_batch(eeg) for r in runners}
            for k, i in enumerate(ds.sample_indices[idx]):
                patches = [regions for regions, _ in sources.patches(int(i))]
                centres = sources.centres[int(i)]
                for r in runners:
                    m = sample_metrics(preds[r.name][k], target[k], patches, centres,
                                       atlas.distances)
                    rows.append({"method": r.name, "kind": r.kind, "snr_db": snr,
                                 "sample": int(i), **m})
                if snr == fig_snr and int(idx[k]) in fig_idx:
                    examples[int(i)] = {"truth": target[k], "centres": centres.tolist(),
                                        **{r.name: preds[r.name][k] for r in runners}}
            bar.update(len(idx))
    bar.close()
    names = [r.name for r in [_Method(m, None, "classical") for m in methods] + learned]
    summary = summarise(rows)
    paths = {
        "per_sample": write_csv(out_dir / "per_sample.csv", rows),
        "summary_csv": write_csv(out_dir / "summary.csv", summary),
        "summary_md": out_dir / "summary.md",
    }
    md = summary_markdown(summary, names, snrs)
    with atomic_path(paths["summary_md"]) as tmp:
        Path(tmp).write_text(md)
    sfreq = float(datasets[snrs[0]].preprocessing["sfreq"])
    fig_bar = tqdm(total=1 + 2 * len(examples), desc="figures", unit="figure",
                   disable=not progress)
    figures = [_boxplots(rows, names, snrs, out_dir / "figures")]
    fig_bar.update(1)
    for i, ex in sorted(examples.items()):
        figures += _example_figures(atlas, ex, names, i, fig_snr, out_dir / "figures",
                                    sfreq=sfreq, on_figure=fig_bar.update)
    fig_bar.close()
    config = {"sources": sources.attrs, "bank": getattr(bank, "attrs", str(bank)),
              "leadfield": _describe(leadfield),
              "inverse_leadfield": _describe(inverse_leadfield),
              "methods": names, "checkpoints": [str(p) for p in checkpoints], "snrs_db": snrs,
              "n_samples": n_total, "seed": seed, "dataset_kwargs": dataset_kwargs or {},
              "versions": versions()}
    write_json(out_dir / "evaluation.json", config)
    paths["report"] = _write_html(out_dir / "report.html", md, figures, config)
    logger.info("evaluation report: %s", paths["report"])
    return {**paths, "summary": summary}


def summarise(rows: list) -> list:
    """Mean, sd, median and count per (method, snr_db, metric), NaNs counted apart.

    Parameters
    ----------
    rows : list of dict
        Per-sample rows with ``method``, ``snr_db`` and metric values.

    Returns
    -------
    list of dict with ``method, snr_db, metric, mean, sd, median, n, n_undefined``.
    """
    groups: dict = {}
    for row in rows:
        for metric in REPORT_METRICS:
            if metric in row:
                groups.setdefault((row["method"], row["snr_db"], metric), []).append(row[metric])
    out = []
    for (method, snr, metric), values in groups.items():
        v = np.asarray(values, dtype=float)
        ok = v[np.isfinite(v)]
        out.append({"method": method, "snr_db": snr, "metric": metric,
                    "mean": float(ok.mean()) if ok.size else math.nan,
                    "sd": float(ok.std(ddof=1)) if ok.size > 1 else math.nan,
                    "median": float(np.median(ok)) if ok.size else math.nan,
                    "n": int(ok.size), "n_undefined": int(v.size - ok.size)})
    return out


def summary_markdown(summary: list, methods: list, snrs: list) -> str:
    """Markdown tables (one per SNR): metrics as rows, methods as columns, best in bold."""
    table = {(r["method"], r["snr_db"], r["metric"]): r for r in summary}
    lines = []
    for snr in snrs:
        lines += [f"### SNR {snr:g} dB", "",
                  "| metric | " + " | ".join(methods) + " |",
                  "| --- |" + " --- |" * len(methods)]
        for metric, better in REPORT_METRICS.items():
            cells = [table.get((m, snr, metric)) for m in methods]
            means = [c["mean"] if c else math.nan for c in cells]
            finite = [x for x in means if np.isfinite(x)]
            best = (min(finite) if better == "lower" else max(finite)) if finite else None
            txt = []
            for c, mean in zip(cells, means):
                if c is None or not np.isfinite(mean):
                    txt.append("n/a")
                    continue
                s = f"{mean:.3g} ± {c['sd']:.2g} (med {c['median']:.3g})"
                txt.append(f"**{s}**" if best is not None and mean == best else s)
            arrow = "↓" if better == "lower" else "↑"
            lines.append(f"| {metric} {arrow} | " + " | ".join(txt) + " |")
        lines.append("")
    return "\n".join(lines)


def _boxplots(rows, methods, snrs, fig_dir: Path) -> Path:
    from .viz import _mpl, save_figure

    plt = _mpl()
    metrics = list(REPORT_METRICS)
    n_col = 4
    n_row = math.ceil(len(metrics) / n_col)
    fig, axes = plt.subplots(n_row, n_col, figsize=(4.2 * n_col, 3.2 * n_row), squeeze=False)
    width = 0.8 / max(1, len(methods))
    colours = plt.get_cmap("tab10")
    for ax, metric in zip(axes.ravel(), metrics):
        for j, method in enumerate(methods):
            data = [[r[metric] for r in rows if r["method"] == method and r["snr_db"] == s
                     and np.isfinite(r[metric])] for s in snrs]
            pos = np.arange(len(snrs)) + (j - (len(methods) - 1) / 2) * width
            bp = ax.boxplot([d if d else [np.nan] for d in data], positions=pos, widths=width * 0.9,
                            patch_artist=True, showfliers=False)
            for box in bp["boxes"]:
                box.set_facecolor(colours(j))
        ax.set_xticks(range(len(snrs)), [f"{s:g}" for s in snrs])
        ax.set_xlabel("sensor SNR (dB)", fontsize=8)
        ax.set_ylabel(METRIC_UNITS.get(metric, "value"), fontsize=8)
        ax.set_title(f"{metric} ({REPORT_METRICS[metric]} is better)", fontsize=9)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_axis_off()
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(j)) for j in range(len(methods))]
    fig.legend(handles, methods, loc="lower right", ncol=min(len(methods), 4))
    fig.tight_layout()
    return save_figure(fig, fig_dir / "boxplots.png")


def _example_figures(atlas, example, methods, index, snr, fig_dir: Path, *,
                     sfreq: float = 500.0, on_figure=None) -> list:
    from .viz import _mpl, plot_cortex, region_label, save_figure

    plt = _mpl()
    out = []
    panels = ["truth"] + list(methods)
    fig = plt.figure(figsize=(13, 2.9 * len(panels)))
    sub = fig.subfigures(len(panels), 1)
    for sf, name in zip(np.atleast_1d(sub), panels):
        power = (example[name] ** 2).mean(0)
        power = power / (power.max() or 1.0)
        plot_cortex(atlas, power, cmap="Reds", symmetric=False, title=f"{name}: relative power",
                    fig=sf, cbar_label="power / max (normalised)")
    out.append(save_figure(fig, fig_dir / f"sample{index}_cortex.png"))
    if on_figure is not None:
        on_figure(1)
    fig, axes = plt.subplots(1, len(example["centres"]), figsize=(5 * len(example["centres"]), 3),
                             squeeze=False)
    styles = ["--", "-.", ":", (0, (5, 1, 1, 1))]
    times = np.arange(len(example["truth"])) / sfreq
    for ax, c in zip(axes[0], example["centres"]):
        for j, name in enumerate(panels):
            y = example[name][:, c]
            y = y / (np.abs(y).max() or 1.0)
            if name == "truth":
                ax.plot(times, y, lw=3, color="0.75", label=name, zorder=1)
            else:
                ax.plot(times, y, lw=1.2, ls=styles[(j - 1) % len(styles)], label=name,
                        zorder=2)
        label = region_label(atlas.region_names[c])
        ax.set_title(f"sample {index}, {snr:g} dB, region {c}\n{label}", fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("activity / max |activity| (normalised)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out.append(save_figure(fig, fig_dir / f"sample{index}_timecourse.png"))
    if on_figure is not None:
        on_figure(1)
    return out


def markdown_tables_to_html(md: str) -> str:
    r"""HTML of the ``### heading`` lines and pipe tables of a Markdown text (bold cells kept).

    Only what :func:`summary_markdown` writes is understood; other lines are dropped.

    >>> markdown_tables_to_html("| a | b |\n| --- | --- |\n| **1** | 2 |")
    '<table>\n<tr><th>a</th><th>b</th></tr>\n<tr><td><b>1</b></td><td>2</td></tr>\n</table>'
    """
    import html

    out, in_table = [], False
    for line in md.splitlines():
        if line.startswith("### "):
            out.append(f"<h3>{html.escape(line[4:])}</h3>")
        elif line.startswith("| ---"):
            continue
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            row = "".join(
                f"<{tag}>" + (f"<b>{html.escape(c[2:-2])}</b>" if c.startswith("**")
                              else html.escape(c)) + f"</{tag}>" for c in cells)
            out.append(f"<tr>{row}</tr>")
        elif in_table:
            out.append("</table>")
            in_table = False
    if in_table:
        out.append("</table>")
    return "\n".join(out)


def _write_html(path: Path, summary_md: str, figures: list, config: dict) -> Path:
    import html
    import json

    imgs = []
    for fig in figures:
        data = base64.b64encode(Path(fig).read_bytes()).decode()
        imgs.append(f"<h3>{html.escape(Path(fig).stem)}</h3><img src='data:image/png;base64,{data}'"
                    " style='max-width:100%'>")
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>LightBunny evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #bbb;padding:3px 6px}} pre{{background:#f5f5f5;padding:1em}}</style></head>
<body><h1>LightBunny evaluation</h1>
<p>Every method saw the same samples at each SNR. Mean ± sd (median); best mean in bold;
arrows give the better direction. Localisation error follows DeepSIF's definition (see
<code>lightbunny.metrics</code>).</p>
<h2>Summary</h2>{markdown_tables_to_html(summary_md)}
<h2>Figures</h2>{''.join(imgs)}
<h2>Parameters</h2><pre>{html.escape(json.dumps(config, indent=2, default=str))}</pre>
</body></html>"""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page)
    return path
