"""The benchmark run: every method on identical samples of every condition, then the report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._logging import logger
from ..utils import atomic_path, check_option, versions, write_csv, write_json
from .conditions import (
    BENCHMARK_VERSION,
    CONDITIONS,
    SPLITS,
    _in_prior_condition,
    centre_folds,
    load_real_noise,
    make_condition,
    mismatch_leadfields,
    training_patch_set,
)
from .methods import (
    CLASSICAL,
    DEFAULT_METHODS,
    FLOORS_CEILINGS,
    SPARSE,
    _classical_runner,
    _learned_runner,
    _oracle_patches,
    _sparse_runner,
    random_floor,
)
from .report import CORTEX_METHODS, _write_report, benchmark_markdown
from .scoring import (
    _condition_summary,
    _score,
    emd,
    fraction_best,
    paired_win_loss,
    summarise,
    win_table,
)

#: Samples per condition, validation samples for the MxNE alpha grid, figures, per budget.
BUDGETS = {
    "smoke": {"n_samples": 6, "n_val": 4, "alpha_grid": (30.0,), "n_cortex": 0},
    "small": {"n_samples": 24, "n_val": 8, "alpha_grid": (10.0, 30.0, 60.0), "n_cortex": 1},
    "full": {"n_samples": 200, "n_val": 32, "alpha_grid": (5.0, 10.0, 20.0, 40.0, 60.0, 80.0),
             "n_cortex": 3},
}


def run_benchmark(atlas, leadfield, *, out_dir, checkpoints=(), bank=None, train_sources=None,
                  conditions=None, methods=DEFAULT_METHODS, budget: str = "small",
                  n_samples: int | None = None, seed: int = 0, train_seed: int = 0,
                  split: str = "novel", n_folds: int = 5, fold: int = 0,
                  mismatch: dict | None = None, real_noise=None, data_dir=None,
                  figures: bool = True, device: str = "cpu", progress: bool = True) -> dict:
    """Run the generalisation benchmark and write its report.

    Parameters
    ----------
    atlas : Atlas
    leadfield : Leadfield
        The nominal leadfield: every method inverts it (and a checkpoint must have been trained
        on its channels).
    out_dir : path
    checkpoints : sequence of path
        Trained networks to score.
    bank : SpikeBank or path, optional
        Spike waveforms; conditions with spikes are skipped (with the reason) without it.
    train_sources : Sources, path or sequence of them, optional
        The training split(s), for the no-repeated-patch rule; default: every candidate patch
        of ``make_sources(seed=train_seed)``.
    conditions : sequence of str, optional
        Names from :data:`CONDITIONS` (default all).
    methods : sequence of str
        Classical and sparse methods (:data:`DEFAULT_METHODS`); the floor and ceilings are
        always added.
    budget : {'smoke', 'small', 'full'}
        Samples per condition and tuning/figure effort (:data:`BUDGETS`).
    n_samples : int, optional
        Override the budget's samples per condition.
    seed : int
        Test samples derive from ``(seed, condition, i)``; validation uses ``seed + 1000``.
    train_seed : int
        The seed the training sources were made with (``in_prior`` and the default patch set).
    split : {'novel', 'centre-disjoint'}
        Applies to every condition but ``in_prior``, which is the training recipe itself.
    n_folds, fold : int
        The fold of :func:`centre_folds` whose regions are the test centres
        (``centre-disjoint``).
    mismatch : dict of str -> Leadfield or callable, optional
        Simulation leadfields of ``mismatch_head``, ``mismatch_orientation``,
        ``mismatch_jitter``, ``mismatch_all`` (a callable is called as ``f(atlas, leadfield)``);
        default :func:`mismatch_leadfields`.
    real_noise : ndarray or path, optional
        Resting-EEG segments (n_segments, n_times, n_chans) in the leadfield's channel order,
        or a ``realistic_noise.mat``; default: from the data folder (:func:`load_real_noise`).
    data_dir : path, optional
    figures : bool
    device : str
    progress : bool

    Returns
    -------
    dict
        Paths (``per_sample``, ``summary_csv``, ``summary_md``, ``report``, ``json``), the
        ``summary`` rows, ``skipped`` conditions with reasons and ``timings`` (s).
    """
    t_start = time.perf_counter()
    cfg, names, methods = _check_options(budget, split, n_samples, conditions, methods)
    if atlas.name != leadfield.atlas_name or atlas.n_regions != leadfield.n_regions:
        raise ValueError(f"atlas {atlas.name!r} ({atlas.n_regions} regions) does not match the "
                         f"leadfield's {leadfield.atlas_name!r} ({leadfield.n_regions}).")
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    bank = _open_bank(bank, atlas)
    sfreq = float(bank.sfreq) if bank is not None else 500.0
    n_times = int(bank.n_times) if bank is not None else 500
    runners = _learned_runners(checkpoints, leadfield, atlas, device, n_times)
    runners += [_classical_runner(m, leadfield) for m in methods if m in CLASSICAL]
    timings = {}
    split_rule = _split_rule(atlas, train_sources, train_seed, split, n_folds, fold, seed)
    gains, lf_notes = _simulation_gains(names, atlas, leadfield, mismatch, seed, data_dir,
                                        timings)
    real_noise, noise_note = _real_noise(real_noise, leadfield, data_dir, n_times)
    skipped = _skipped_conditions(names, bank, real_noise, noise_note, gains, lf_notes)
    run_names = [c for c in names if c not in skipped]
    for c, why in skipped.items():
        logger.warning("benchmark: condition %s skipped: %s", c, why)
    setting = _Setting(atlas=atlas, leadfield=leadfield, bank=bank, cfg=cfg, sfreq=sfreq,
                       n_times=n_times, gains=gains, forbidden=split_rule["forbidden"],
                       allowed=split_rule["allowed"], real_noise=real_noise, seed=seed,
                       train_seed=train_seed)
    sparse_params, tuning = _tune_sparse(methods, setting, timings)
    runners += [_sparse_runner(m, leadfield, sparse_params[m]) for m in methods if m in SPARSE]
    rows, examples, cond_info = _run_conditions(run_names, runners, setting, timings, progress)
    record = {"budget": budget, "checkpoints": [str(p) for p in checkpoints], "split": split,
              "n_folds": n_folds, "fold": fold, "lf_notes": lf_notes, "noise_note": noise_note,
              "skipped": skipped, "tuning": tuning, "cond_info": cond_info, **split_rule}
    return _write_outputs(out_dir, rows, examples, run_names, runners, record, setting, figures,
                          timings, t_start)


def _write_outputs(out_dir, rows, examples, run_names, runners, record, s, figures, timings,
                   t_start) -> dict:
    """Summaries, tables (CSV, markdown), the report and ``benchmark.json``; what
    :func:`run_benchmark` returns."""
    competitors = [r.name for r in runners]
    all_names = competitors + list(FLOORS_CEILINGS)
    summary = summarise(rows, run_names, all_names, seed=s.seed)
    best = fraction_best(rows, run_names, competitors)
    wins = win_table(summary, run_names, competitors)
    paired = {r.name: paired_win_loss(rows, run_names, r.name,
                                      [m for m in all_names if m != r.name])
              for r in runners if r.kind == "learned"}
    md = benchmark_markdown(summary, best, wins, run_names, all_names, competitors,
                            record["skipped"], record["cond_info"], record["tuning"],
                            record["lf_notes"], record["noise_note"], record["patch_rule"],
                            record["split"], record["frac_train_centres"], paired)
    paths = {"per_sample": write_csv(out_dir / "per_sample.csv", rows),
             "summary_csv": write_csv(out_dir / "summary.csv", summary),
             "fraction_best_csv": write_csv(out_dir / "fraction_best.csv", best),
             "summary_md": out_dir / "summary.md"}
    with atomic_path(paths["summary_md"]) as tmp:
        Path(tmp).write_text(md)
    timings["total_before_report"] = time.perf_counter() - t_start
    config = _run_config(record, s, all_names, run_names)
    paths["json"] = out_dir / "benchmark.json"
    if figures:
        paths["report"] = _write_report(out_dir, md, rows, run_names, all_names, examples,
                                        s.atlas, config)
    timings["total"] = time.perf_counter() - t_start
    config["timings_s"] = timings
    write_json(paths["json"], config)
    logger.info("benchmark done in %.0f s: %s", timings["total"], out_dir)
    return {**paths, "summary": summary, "fraction_best": best, "wins": wins,
            "skipped": record["skipped"], "timings": timings, "tuning": record["tuning"]}


def _run_config(record: dict, s, all_names, run_names) -> dict:
    """Everything that defines the run, for ``benchmark.json`` and the report."""
    disjoint = record["split"] == "centre-disjoint"
    return {
        "benchmark_version": BENCHMARK_VERSION, "budget": record["budget"],
        "budget_settings": s.cfg, "atlas": s.atlas.name, "leadfields": record["lf_notes"],
        "real_noise": record["noise_note"], "checkpoints": record["checkpoints"],
        "methods": all_names,
        "conditions": {c: {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in CONDITIONS[c].items()} for c in run_names},
        "skipped": record["skipped"], "seed": s.seed, "train_seed": s.train_seed,
        "split": record["split"], "n_folds": record["n_folds"] if disjoint else None,
        "fold": record["fold"] if disjoint else None, "patch_rule": record["patch_rule"],
        "fraction_test_centres_in_training": record["frac_train_centres"],
        "tuning": record["tuning"], "condition_summaries": record["cond_info"],
        "versions": versions(),
    }


@dataclass
class _Setting:
    """What every condition of one benchmark run shares."""

    atlas: object
    leadfield: object
    bank: object
    cfg: dict
    sfreq: float
    n_times: int
    gains: dict
    forbidden: set
    allowed: object
    real_noise: object
    seed: int
    train_seed: int


def _check_options(budget, split, n_samples, conditions, methods):
    """The budget's settings (``n_samples`` applied), condition names and canonical methods."""
    check_option("budget", budget, BUDGETS)
    check_option("split", split, SPLITS)
    cfg = dict(BUDGETS[budget])
    if n_samples is not None:
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        cfg["n_samples"] = int(n_samples)
    names = list(CONDITIONS) if conditions is None else list(conditions)
    for c in names:
        check_option("condition", c, CONDITIONS)
    known = {m.lower(): m for m in CLASSICAL + SPARSE}
    methods = [known.get(str(m).lower(), m) for m in methods]
    for m in methods:
        check_option("method", m, CLASSICAL + SPARSE)
    return cfg, names, methods


def _open_bank(bank, atlas):
    from ..spikes import SpikeBank

    if isinstance(bank, (str, Path)):
        bank = SpikeBank.open(bank)
    if bank is not None and (bank.atlas_name != atlas.name or bank.n_regions != atlas.n_regions):
        raise ValueError(f"the spike bank is for {bank.atlas_name!r}, not {atlas.name!r}.")
    return bank


def _learned_runners(checkpoints, leadfield, atlas, device, n_times) -> list:
    """A runner per checkpoint, named uniquely, each checked for the window length."""
    runners = []
    for path in checkpoints:
        r = _learned_runner(path, leadfield, atlas, device)
        if r.name in {q.name for q in runners}:  # e.g. two run folders both called "train"
            parts = Path(path).resolve().parts
            r.name = f"{r.name.split(':')[0]}:{'/'.join(parts[-3:-1])}"
            k = 2
            while r.name in {q.name for q in runners}:
                r.name, k = f"{r.name}#{k}", k + 1
        if r.n_times and int(r.n_times) != n_times:
            raise ValueError(f"{path} takes {r.n_times} samples per window, the benchmark "
                             f"makes {n_times}.")
        runners.append(r)
    return runners


def _split_rule(atlas, train_sources, train_seed, split, n_folds, fold, seed) -> dict:
    """The patches test samples must avoid, the allowed centres, and how to describe both."""
    from ..sources import Sources

    if train_sources is not None:
        items = train_sources if isinstance(train_sources, (list, tuple)) else [train_sources]
        items = [s if isinstance(s, Sources) else Sources.load(s) for s in items]
        forbidden = training_patch_set(items)
        train_centres = np.unique(np.concatenate([s.centres.ravel() for s in items]))
        patch_rule = f"{len(forbidden)} distinct patches of the given training sources"
    else:
        forbidden = training_patch_set(atlas=atlas, seed=train_seed)
        train_centres = np.arange(atlas.n_regions)
        patch_rule = (f"all {len(forbidden)} candidate patches of make_sources(seed={train_seed})"
                      " (no training sources given)")
    allowed = None
    if split == "centre-disjoint":
        folds = centre_folds(atlas, n_folds, seed=seed)
        if not 0 <= fold < n_folds:
            raise ValueError(f"fold must be in 0..{n_folds - 1}, got {fold}.")
        allowed = np.flatnonzero(folds == fold)
    test_pool = np.arange(atlas.n_regions) if allowed is None else allowed
    return {"forbidden": forbidden, "allowed": allowed, "patch_rule": patch_rule,
            "frac_train_centres": float(np.isin(test_pool, train_centres).mean())}


def _simulation_gains(names, atlas, leadfield, mismatch, seed, data_dir, timings):
    """Gains of the leadfields the conditions simulate with, and a note on each."""
    gains = {"nominal": leadfield.gain}
    lf_notes = {"nominal": f"{leadfield.head_model}, {leadfield.orientation}, {leadfield.montage}"}
    wanted_lf = {_v for c in names for _v in np.atleast_1d(CONDITIONS[c]["leadfield"]).tolist()}
    if not wanted_lf - {"nominal"}:
        return gains, lf_notes
    t0 = time.perf_counter()
    if mismatch is None:
        built = mismatch_leadfields(atlas, leadfield, seed=seed, data_dir=data_dir)
    else:
        built = {}
        for k, v in mismatch.items():
            lf = v(atlas, leadfield) if callable(v) else v
            built[k] = (lf, f"given leadfield ({getattr(lf, 'head_model', '?')}, "
                            f"{getattr(lf, 'orientation', '?')})")
    for k, (lf, note) in built.items():
        if lf is None:
            lf_notes[k] = f"unavailable: {note}"
            continue
        g = getattr(lf, "gain", lf)
        if getattr(lf, "ch_names", leadfield.ch_names) != leadfield.ch_names or \
                np.shape(g) != leadfield.gain.shape:
            raise ValueError(f"mismatch leadfield {k!r} must have the nominal channels and "
                             "regions.")
        gains[k], lf_notes[k] = np.asarray(g), note
    timings["mismatch_leadfields"] = time.perf_counter() - t0
    return gains, lf_notes


def _real_noise(real_noise, leadfield, data_dir, n_times):
    """Resting-EEG segments (or None) and where they came from (or why there are none)."""
    if isinstance(real_noise, (str, Path)):
        real_noise, noise_note = load_real_noise(leadfield.ch_names, path=real_noise)
    elif real_noise is None:
        real_noise, noise_note = load_real_noise(leadfield.ch_names, data_dir=data_dir)
    else:
        real_noise = np.asarray(real_noise, float)
        noise_note = f"given array {real_noise.shape}"
    if real_noise is not None and real_noise.shape[1] < n_times:
        real_noise, noise_note = None, (f"real noise segments have {real_noise.shape[1]} samples, "
                                        f"fewer than {n_times}")
    return real_noise, noise_note


def _skipped_conditions(names, bank, real_noise, noise_note, gains, lf_notes) -> dict:
    """Condition -> why it cannot run (no bank, no real noise, no simulation leadfield)."""
    skipped = {}
    for c in names:
        spec = CONDITIONS[c]
        needs = np.atleast_1d(spec["waveform"]).tolist()
        if (spec.get("recipe") == "dataset" or needs == ["spike"]) and bank is None:
            skipped[c] = "needs the spike bank (--bank)"
        if "real" in np.atleast_1d(spec["noise"]).tolist() and real_noise is None:
            skipped[c] = f"real resting-EEG noise unavailable: {noise_note}"
        for lfn in np.atleast_1d(spec["leadfield"]).tolist():
            if lfn not in gains:
                skipped[c] = f"no simulation leadfield {lfn!r}: " + lf_notes.get(
                    lfn, "not given (mismatch=...)")
    return skipped


def _tune_sparse(methods, s: _Setting, timings):
    """Parameters of the sparse solvers (MxNE's alpha from a validation grid) and how each was
    chosen."""
    sparse_params = {"MxNE": {}, "gamma-MAP": {"alpha": 1.0}, "Champagne": {}}
    tuning = {}
    if "MxNE" in methods:
        t0 = time.perf_counter()
        best, tuning["MxNE"] = _tune_mxne(s)
        sparse_params["MxNE"] = {"alpha": best}
        timings["tuning"] = time.perf_counter() - t0
        logger.info("benchmark: MxNE alpha %s%% of alpha_max (%s), %.0f s", best,
                    tuning["MxNE"]["how"], timings["tuning"])
    tuning["gamma-MAP"] = {"alpha": 1.0, "how": "whitened noise variance (noise level from "
                                               "the nominal SNR)"}
    tuning["Champagne"] = {"how": "noise variance from the nominal SNR; no free parameter"}
    return sparse_params, tuning


def _tune_mxne(s: _Setting):
    """MxNE's alpha: the grid value with the lowest median EMD on validation samples of the
    base condition (seed + 1000), never the test truth."""
    grid = s.cfg["alpha_grid"]
    if len(grid) == 1:
        return grid[0], {"alpha": grid[0], "how": "budget with a one-value grid"}
    base = dict(CONDITIONS["base"])
    if s.bank is None:
        base["waveform"] = "erp"
    val = make_condition(base, atlas=s.atlas, gains=s.gains, n_samples=s.cfg["n_val"],
                         seed=s.seed + 1000, name="validation", bank=s.bank,
                         forbidden=s.forbidden, allowed_centres=s.allowed, sfreq=s.sfreq,
                         n_times=s.n_times)
    scores = {}
    for a in grid:
        r = _sparse_runner("MxNE", s.leadfield, {"alpha": a})
        vals = [emd(r.fn(val.eeg[i], val.info[i]["snr_db"], i), val.target[i],
                    s.atlas.distances) for i in range(len(val.eeg))]
        scores[a] = float(np.nanmedian(vals))
    best = min(scores, key=scores.get)
    return best, {"alpha": best, "grid_median_emd_mm": scores,
                  "how": f"lowest median EMD on {s.cfg['n_val']} validation samples "
                         f"of the base condition (seed {s.seed + 1000})"}


def _condition_samples(cname: str, cseed: int, s: _Setting):
    spec = CONDITIONS[cname]
    if spec.get("recipe") == "dataset":
        return _in_prior_condition(s.atlas, s.gains, s.cfg["n_samples"], cseed, s.bank,
                                   s.train_seed, s.leadfield, s.forbidden)
    return make_condition(spec, atlas=s.atlas, gains=s.gains, n_samples=s.cfg["n_samples"],
                          seed=cseed, name=cname, bank=s.bank, forbidden=s.forbidden,
                          allowed_centres=s.allowed, real_noise=s.real_noise, sfreq=s.sfreq,
                          n_times=s.n_times)


def _run_conditions(run_names, runners, s: _Setting, timings, progress):
    """Every method on every sample of every condition: per-sample rows, cortex examples and
    a summary of each condition's samples."""
    from tqdm.auto import tqdm

    rows, examples, cond_info = [], {}, {}
    all_names = [r.name for r in runners] + list(FLOORS_CEILINGS)
    bar = tqdm(total=len(run_names) * s.cfg["n_samples"], desc="benchmark", unit="sample",
               disable=not progress)
    method_time = {n: 0.0 for n in all_names}
    for ci, cname in enumerate(run_names):
        t0 = time.perf_counter()
        cseed = s.seed * 1000 + _stable_index(cname)
        samples = _condition_samples(cname, cseed, s)
        cond_info[cname] = _condition_summary(samples)
        timings[f"simulate:{cname}"] = time.perf_counter() - t0
        for i in range(len(samples.eeg)):
            preds = _predict(runners, samples, i, cseed, s, method_time)
            rows += _score_sample(cname, samples, i, preds, all_names, runners, s.atlas)
            if i < s.cfg["n_cortex"]:
                shown = [r.name for r in runners if r.kind == "learned"
                         or r.name in CORTEX_METHODS]
                examples[(cname, i)] = {"truth": samples.target[i],
                                        "centres": list(map(int, samples.centres[i])),
                                        **{n: preds[n] for n in shown}}
            bar.update(1)
        timings[f"condition:{cname}"] = time.perf_counter() - t0
        logger.info("benchmark: condition %s (%d/%d) done in %.0f s", cname, ci + 1,
                    len(run_names), timings[f"condition:{cname}"])
    bar.close()
    timings["per_method_total"] = method_time
    return rows, examples, cond_info


def _predict(runners, samples, i: int, cseed: int, s: _Setting, method_time: dict) -> dict:
    """Method name -> its estimate of sample ``i`` (the floor and ceilings included)."""
    eeg, target, snr = samples.eeg[i], samples.target[i], samples.info[i]["snr_db"]
    preds = {}
    for r in runners:
        t1 = time.perf_counter()
        preds[r.name] = r.fn(eeg, snr, i)
        method_time[r.name] += time.perf_counter() - t1
    preds["random"] = random_floor(s.n_times, s.atlas.n_regions,
                                   np.random.default_rng([cseed, 31, i]))
    preds["truth"] = target
    preds["oracle_patches"] = _oracle_patches(s.leadfield.gain, eeg, target, samples.patches[i])
    return preds


def _score_sample(cname, samples, i, preds, all_names, runners, atlas) -> list:
    """One row per method: the sample's factors and every metric."""
    target, patches, centres = samples.target[i], samples.patches[i], samples.centres[i]
    info = samples.info[i]
    kinds = {r.name: r.kind for r in reversed(runners)}  # the first runner of a name wins
    rows = []
    for name in all_names:
        m = _score(preds[name], target, patches, centres, atlas.distances)
        kind = ("floor" if name == "random" else "ceiling" if name in FLOORS_CEILINGS
                else kinds[name])
        rows.append({"condition": cname, "method": name, "kind": kind, "sample": i,
                     "snr_db": info["snr_db"], "extent": info["extent"],
                     "waveform": info["waveform"], "n_sources": info["n_sources"], **m})
    return rows


def _stable_index(name: str) -> int:
    """A seed offset per condition name that does not depend on which conditions run."""
    return sum((k + 1) * ord(ch) for k, ch in enumerate(name)) % 997
