"""The whole pipeline from one file of parameters: ``lightbunny run CONFIG`` and the quickstart.

Stages, each skipped when its output is already complete (so a re-run resumes where an
interrupted one stopped, and a finished run costs seconds):

1. ``leadfield.h5``   region leadfield of the atlas for the montage;
2. ``bank.h5``        spike bank (neural-mass simulation, resumable region by region);
3. ``sources_{train,val,test}.h5``  synthetic source patches of each split;
4. ``train/``         checkpoints, history, loss curve (``--resume`` from ``last.pt``);
5. ``evaluation/``    the model against classical inverses on identical test samples;
6. ``apply/``         one simulated recording written to EDF (clinical channel names, a few
   channels missing) imaged through the real-EEG path by the network and by sLORETA;
7. ``report.html``    one page: the summary table, loss curve, figures and where files are.

Configuration: a TOML file (or dict) with the sections of :data:`DEFAULTS`; unknown keys are an
error. Shipped configurations are in ``lightbunny/configs/`` (:func:`config_path`).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np

from ._logging import logger
from .utils import atomic_path, versions, write_json

#: Every option, with its default. Sections map to stages.
DEFAULTS = {
    "pipeline": {"out": "source/run", "atlas": "tvb76", "data_dir": None,
                 "montage": "standard_1020_64", "orientation": "normal", "seed": 0,
                 "device": "auto", "head_model": None},
    "simulate": {"duration": 20.0, "batch_size": 38, "backend": "torch", "regions": None,
                 "scheduler": None},
    "sources": {"n_sources": 2, "n_iter_train": None, "n_iter_val": None, "n_iter_test": None,
                "half_distance": [40.0, 60.0]},
    "dataset": {},
    "train": {"model": "lightbunny", "model_config": {}, "epochs": 20, "batch_size": 32,
              "recipe": "lightbunny", "options": {}},
    "evaluate": {"methods": ["sloreta", "eloreta", "mne", "dspm"], "snrs": [5, 10, 15, 20],
                 "n_samples": 200, "dataset": {}},
    "apply": {"enabled": True, "region": None, "sfreq": 256.0, "missing": ["Cz", "O1", "FC3"]},
}
CONFIGS = ("quickstart", "seed994", "deepsif75")


def config_path(name: str) -> Path:
    """Path of a shipped configuration (``quickstart``, ``seed994``, ``deepsif75``)."""
    from .utils import check_option

    check_option("config", name, CONFIGS)
    return Path(__file__).parent / "configs" / f"{name}.toml"


def load_config(config) -> dict:
    """Merge a TOML file, a shipped config name or a dict over :data:`DEFAULTS`.

    Raises
    ------
    ValueError
        On unknown sections or keys (naming the allowed ones).
    """
    import tomllib

    if isinstance(config, (str, Path)) and str(config) in CONFIGS:
        config = config_path(str(config))
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"No configuration file at {path} (shipped ones: "
                                    f"{', '.join(CONFIGS)})")
        with open(path, "rb") as f:
            try:
                config = tomllib.load(f)
            except tomllib.TOMLDecodeError as err:
                raise ValueError(f"{path} is not valid TOML: {err}") from None
    merged = copy.deepcopy(DEFAULTS)
    for section, values in (config or {}).items():
        if section not in DEFAULTS:
            raise ValueError(f"Unknown configuration section [{section}]. Allowed: "
                             f"{', '.join(DEFAULTS)}.")
        if not isinstance(values, dict):
            raise ValueError(f"[{section}] must be a table of options.")
        free = section in ("dataset",)
        for key, value in values.items():
            if not free and key not in DEFAULTS[section]:
                raise ValueError(f"Unknown option {key!r} in [{section}]. Allowed: "
                                 f"{', '.join(DEFAULTS[section])}.")
            merged[section][key] = value
    return merged


def _stage(name: str, n: int, total: int = 7):
    logger.info("[%d/%d] %s", n, total, name)


def run_pipeline(config, *, out=None, progress: bool = True) -> dict:
    """Run every stage of ``config`` (path, shipped name or dict), skipping finished ones.

    Parameters
    ----------
    config : path | str | dict
    out : path, optional
        Overrides ``[pipeline] out``.

    Returns
    -------
    dict of paths: ``leadfield``, ``bank``, ``sources``, ``checkpoint``, ``evaluation``,
    ``apply``, ``report``, plus ``summary`` (evaluation rows) and ``timings`` (s per stage).
    """
    from .atlas import load_atlas
    from .leadfield import Leadfield, make_leadfield

    cfg = load_config(config)
    p = cfg["pipeline"]
    out = Path(out or p["out"])
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {**cfg, "versions": versions()})
    timings, paths = {}, {"out": out}
    t0 = time.perf_counter()

    _stage("atlas and leadfield", 1)
    atlas = load_atlas(p["atlas"], data_dir=p["data_dir"])
    lf_path = out / "leadfield.h5"
    if lf_path.is_file():
        leadfield = Leadfield.load(lf_path)
    else:
        leadfield = make_leadfield(atlas, p["montage"], orientation=p["orientation"],
                                   head_model=p["head_model"], data_dir=p["data_dir"])
        leadfield.save(lf_path)
    paths["leadfield"] = lf_path
    timings["leadfield"] = time.perf_counter() - t0

    _stage("neural-mass simulation -> spike bank", 2)
    t = time.perf_counter()
    bank = _simulate_stage(cfg, atlas, leadfield, out / "bank.h5", progress)
    paths["bank"] = out / "bank.h5"
    timings["simulate"] = time.perf_counter() - t

    _stage("synthetic sources", 3)
    t = time.perf_counter()
    paths["sources"] = _sources_stage(cfg, atlas, out, progress)
    timings["sources"] = time.perf_counter() - t

    _stage(f"training {cfg['train']['model']}", 4)
    t = time.perf_counter()
    paths["checkpoint"], train_result = _train_stage(cfg, bank, leadfield, paths["sources"],
                                                     out / "train", progress)
    timings["train"] = time.perf_counter() - t

    _stage("evaluation against classical inverses", 5)
    t = time.perf_counter()
    paths["evaluation"], summary = _evaluate_stage(cfg, atlas, bank, leadfield, paths,
                                                   out / "evaluation", progress)
    timings["evaluate"] = time.perf_counter() - t

    _stage("real-EEG path on a simulated EDF recording", 6)
    t = time.perf_counter()
    paths["apply"] = _apply_stage(cfg, atlas, leadfield, paths["checkpoint"], out / "apply")
    timings["apply"] = time.perf_counter() - t

    _stage("report", 7)
    paths["report"] = _write_report(out, cfg, paths, summary, timings, train_result)
    timings["total"] = time.perf_counter() - t0
    write_json(out / "timings.json", timings)
    return {**paths, "summary": summary, "timings": timings}


# --------------------------------------------------------------------------------- stages
def _simulate_stage(cfg, atlas, leadfield, path: Path, progress: bool):
    from .simulate import simulate_bank

    s = cfg["simulate"]
    return simulate_bank(atlas, path, regions=s["regions"], duration=float(s["duration"]),
                         backend=s["backend"], batch_size=int(s["batch_size"]),
                         seed=int(cfg["pipeline"]["seed"]), gain=leadfield.gain,
                         scheduler=s["scheduler"], progress=progress)


def _sources_stage(cfg, atlas, out: Path, progress: bool) -> dict:
    from .sources import make_sources

    s = cfg["sources"]
    h = s["half_distance"]
    paths = {}
    for split in ("train", "val", "test"):
        path = out / f"sources_{split}.h5"
        if not path.is_file():
            src = make_sources(atlas, split=split, n_iter=s[f"n_iter_{split}"],
                               n_sources=int(s["n_sources"]), seed=int(cfg["pipeline"]["seed"]),
                               half_distance=tuple(h) if isinstance(h, list) else h,
                               progress=progress)
            src.save(path)
        paths[split] = path
    return paths


def _dataset(sources, bank, leadfield, cfg, **extra):
    from .dataset import make_dataset

    kwargs = {"seed": int(cfg["pipeline"]["seed"]), "missing_clips": "neighbour",
              **cfg["dataset"], **extra}
    return make_dataset(sources, bank, leadfield, **kwargs)


def _train_stage(cfg, bank, leadfield, sources: dict, run: Path, progress: bool):
    from .models import build_model
    from .train import train

    tr = cfg["train"]
    done = run / "done.json"
    best = run / "best.pt"
    if done.is_file() and best.is_file():
        logger.info("training already finished in %s", run)
        return best, json.loads(done.read_text())
    train_set = _dataset(sources["train"], bank, leadfield, cfg)
    val_set = _dataset(sources["val"], bank, leadfield, cfg)
    seed = int(cfg["pipeline"]["seed"])
    model = build_model(tr["model"], random_state=seed, n_chans=train_set.n_chans,
                        n_times=train_set.n_times, n_sources=train_set.n_regions,
                        **tr["model_config"])
    logger.info("%s: %s parameters, %d training / %d validation samples", tr["model"],
                f"{model.n_parameters():,}", len(train_set), len(val_set))
    result = train(model, train_set, val_set, out_dir=run, epochs=int(tr["epochs"]),
                   batch_size=int(tr["batch_size"]), seed=seed,
                   device=cfg["pipeline"]["device"], resume=(run / "last.pt").is_file(),
                   recipe=tr["recipe"], progress=progress, **tr["options"])
    info = {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
            "epochs_run": len(result.history), "stopped_early": result.stopped_early,
            "val_loss_zero": result.history[-1].get("val_loss_zero") if result.history else None}
    write_json(done, info)
    return Path(result.best_checkpoint), info


def _evaluate_stage(cfg, atlas, bank, leadfield, paths, out: Path, progress: bool):
    import csv

    from .evaluate import evaluate

    ev = cfg["evaluate"]
    summary_csv = out / "summary.csv"
    if (out / "report.html").is_file() and summary_csv.is_file():
        logger.info("evaluation already written in %s", out)
        with open(summary_csv) as f:
            rows = [{**r, "snr_db": float(r["snr_db"]), "mean": float(r["mean"]),
                     "median": float(r["median"])} for r in csv.DictReader(f)]
        return out, rows
    res = evaluate(paths["sources"]["test"], bank, leadfield, atlas, out_dir=out,
                   methods=ev["methods"], checkpoints=[paths["checkpoint"]], snrs=ev["snrs"],
                   n_samples=ev["n_samples"], seed=int(cfg["pipeline"]["seed"]) + 1,
                   device="cpu", progress=progress,
                   dataset_kwargs=_evaluation_dataset_kwargs(cfg))
    return out, res["summary"]


def _evaluation_dataset_kwargs(cfg) -> dict:
    """Dataset options of the evaluation: ``[dataset]`` then ``[evaluate] dataset``, without
    ``snr_db`` (the evaluation sets the SNR itself, one value per row of ``[evaluate] snrs``;
    passing the training range as well raised "multiple values for keyword argument 'snr_db'")."""
    kwargs = {"missing_clips": "neighbour", **cfg["dataset"], **cfg["evaluate"]["dataset"]}
    if "snr_db" in kwargs:
        logger.info("evaluation: [dataset] snr_db %s is the training range; the evaluation uses "
                    "[evaluate] snrs %s", kwargs.pop("snr_db"), cfg["evaluate"]["snrs"])
    return kwargs


def simulate_recording(leadfield, region: int, *, sfreq: float = 256.0, seconds: float = 4.0,
                       snr_db: float = 20.0, seed: int = 0) -> np.ndarray:
    """EEG (V), shape (n_chans, n_times), of spikes at one region plus white sensor noise.

    Spikes are Gaussian bumps (20 ms s.d.) once a second, projected through the region's
    leadfield column and scaled to 20 µV s.d. at the scalp.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(sfreq * seconds)) / sfreq
    s = np.exp(-0.5 * ((t[:, None] - (np.arange(seconds) + 0.5)) / 0.02) ** 2).sum(1)
    eeg = np.outer(leadfield.gain[:, region], s)
    eeg = eeg - eeg.mean(0)
    eeg = eeg / eeg.std() * 20e-6
    noise = rng.standard_normal(eeg.shape)
    noise *= np.sqrt((eeg**2).mean() / (noise**2).mean() * 10 ** (-snr_db / 10))
    return eeg + noise


def _apply_stage(cfg, atlas, leadfield, checkpoint, out: Path) -> dict:
    import mne

    from .apply import run_apply
    from .leadfield import OLD_NAMES

    ap = cfg["apply"]
    if not ap["enabled"]:
        return {}
    if (out / "apply.json").is_file():
        logger.info("real-EEG demonstration already written in %s", out)
        return json.loads((out / "apply.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    region = ap["region"]
    if region is None:  # the region whose leadfield column is strongest: a clear test case
        region = int(np.argmax(np.abs(leadfield.average_referenced()).max(0)))
    elif isinstance(region, str):
        region = atlas.region_names.index(region)
    edf = out / "recording.edf"
    sfreq = float(ap["sfreq"])
    if not edf.is_file():
        eeg = simulate_recording(leadfield, region, sfreq=sfreq, seed=int(cfg["pipeline"]["seed"]))
        keep = [i for i, c in enumerate(leadfield.ch_names) if c not in set(ap["missing"])]
        old = {v: k for k, v in OLD_NAMES.items()}
        names = [f"EEG {old.get(leadfield.ch_names[i], leadfield.ch_names[i]).upper()}-REF"
                 for i in keep]
        raw = mne.io.RawArray(eeg[keep], mne.create_info(names, sfreq, "eeg"), verbose="error")
        with atomic_path(edf) as tmp:
            mne.export.export_raw(tmp, raw, fmt="edf", overwrite=True, verbose="error")
    results = {"recording": edf, "true_region": region}
    for label, kw in (("network", {"checkpoint": checkpoint}), ("sloreta", {"method": "sLORETA"})):
        # the leadfield also gives the network its electrode positions (interpolation, topomap)
        res = run_apply(edf, out / label, atlas=atlas, leadfield=leadfield, **kw)
        top = [int(r) for r in res.top_regions(3)]
        results[label] = {"dir": out / label, "top_regions": top,
                          "top_names": [atlas.region_names[r] for r in top],
                          "hit": bool(top[0] == region or atlas.adjacency[region, top[0]])}
        logger.info("%s: most active region %s (true %s)", label, atlas.region_names[top[0]],
                    atlas.region_names[region])
    write_json(out / "apply.json", results)
    return results


def _write_report(out: Path, cfg, paths, summary, timings, train_result) -> Path:
    import base64
    import html

    from .evaluate import markdown_tables_to_html

    ev = out / "evaluation"
    md = (ev / "summary.md").read_text() if (ev / "summary.md").is_file() else ""

    def img(path):
        path = Path(path)
        if not path.is_file():
            return ""
        data = base64.b64encode(path.read_bytes()).decode()
        return (f"<figure><img src='data:image/png;base64,{data}' style='max-width:100%'>"
                f"<figcaption>{html.escape(str(path.relative_to(out)))}</figcaption></figure>")

    ap = paths.get("apply") or {}
    apply_rows = "".join(
        f"<tr><td>{k}</td><td>{html.escape(', '.join(v['top_names']))}</td><td>{v['hit']}</td></tr>"
        for k, v in ap.items() if isinstance(v, dict))
    headline = _headline(summary)
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>LightBunny run</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} td,th{{border:1px solid #bbb;
padding:3px 6px}} table{{border-collapse:collapse;font-size:13px}} pre{{background:#f5f5f5}}</style>
</head><body><h1>LightBunny run: {html.escape(cfg['pipeline']['atlas'])}</h1>
<p>{html.escape(headline)}</p>
<h2>Evaluation (identical test samples for every method)</h2>
<p>Full report with box plots and cortex figures: <a href="evaluation/report.html">evaluation/report.html</a></p>
{markdown_tables_to_html(md)}
<h2>Training</h2>{_html_table(train_result or {}, ("", ""))}
{img(out / 'train' / 'loss_curve.png')}
<h2>Real-EEG path: simulated EDF recording</h2>
<p>True region: {html.escape(str(ap.get('true_region', '')))}</p>
<table><tr><th>method</th><th>3 most active regions</th><th>true region or neighbour first</th></tr>{apply_rows}</table>
{img(out / 'apply' / 'network' / 'power_map.png')}{img(out / 'apply' / 'sloreta' / 'power_map.png')}
<h2>Time per stage</h2>{_html_table({k: round(v, 1) for k, v in timings.items()}, ("stage", "s"))}
<h2>Configuration</h2>{''.join(f"<h3>[{html.escape(k)}]</h3>" + _html_table(v, ("option", "value"))
                               for k, v in cfg.items() if isinstance(v, dict))}
</body></html>"""
    path = out / "report.html"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page)
    return path


def _html_table(mapping: dict, header=("key", "value")) -> str:
    """A two-column HTML table of a flat dict (values as compact JSON when not plain)."""
    import html

    def cell(v):
        return html.escape(v if isinstance(v, str) else json.dumps(v, default=str))

    head = (f"<tr><th>{html.escape(header[0])}</th><th>{html.escape(header[1])}</th></tr>"
            if any(header) else "")
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{cell(v)}</td></tr>"
                   for k, v in mapping.items())
    return f"<table>{head}{rows}</table>"


def _headline(summary) -> str:
    """One sentence: the network vs sLORETA on median localisation error, per SNR."""
    rows = [r for r in summary if r["metric"] == "localisation_error"]
    net = sorted({r["method"] for r in rows if ":" in r["method"]})
    if not net or not any(r["method"] == "sloreta" for r in rows):
        return ""
    parts = []
    for snr in sorted({r["snr_db"] for r in rows}):
        get = {r["method"]: r["mean"] for r in rows if r["snr_db"] == snr}
        parts.append(f"{snr:g} dB: {get.get(net[0], float('nan')):.1f} vs "
                     f"{get.get('sloreta', float('nan')):.1f} mm")
    return f"Mean localisation error, {net[0]} vs sLORETA — " + "; ".join(parts) + "."
