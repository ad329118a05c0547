"""The whole pipeline from one file of parameters: ``lightbunny run CONFIG`` and the quickstart.

Stages, in order:

1. ``leadfield.h5``   region leadfield of the atlas for the montage;
2. ``bank.h5``        spike bank (neural-mass simulation, resumable region by region);
3. ``sources_{train,val,test}.h5``  synthetic source patches of each split;
4. ``train/``         checkpoints, history, loss curve (written in ``train.partial/``, which an
   interrupted run resumes from, and moved to ``train/`` when training ends);
5. ``evaluation/``    the model against classical inverses on identical test samples;
6. ``apply/``         one simulated recording written to EDF (clinical channel names, a few
   channels missing) imaged through the real-EEG path by the network and by sLORETA;
7. ``report.html``    one page: the summary table, loss curve, figures and where files are.

Configuration: a TOML file (or dict) validated in full by :func:`lightbunny.config.load_config`
before anything runs. Shipped configurations are in ``lightbunny/configs/`` (:func:`config_path`).

Fingerprints: ``stages.json`` in the output folder records, per stage, the settings it was built
with, the fingerprints of its inputs (the stages it reads), the size and time of its outputs and
how long it took. A stage is skipped only when all of these match; when they differ the run
stops and names the differences (:class:`StaleStageError`), or, with ``force=True``, rebuilds that
stage and every stage after it. Folder outputs are written to a temporary folder and moved in
place whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ._logging import logger
from .config import CONFIGS, Config, ConfigError, config_path, load_config
from .utils import atomic_path, versions, write_json

__all__ = ["CONFIGS", "Config", "ConfigError", "StaleStageError", "config_path", "load_config",
           "run_pipeline", "train_stage", "simulate_recording", "write_demo_recording"]

#: The stage record file in an output folder.
MANIFEST = "stages.json"
STAGES = ("leadfield", "simulate", "sources", "train", "evaluate", "apply")


class StaleStageError(ValueError):
    """A stage's existing output was made with other settings or inputs than asked for."""


# ----------------------------------------------------------------------------- fingerprints
def _hash(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stat(path: Path) -> dict | None:
    """Size and modification time of a file, or of every file in a folder (None if absent)."""
    path = Path(path)
    if path.is_file():
        st = path.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if path.is_dir():
        return {str(f.relative_to(path)): _stat(f) for f in sorted(path.rglob("*"))
                if f.is_file()}
    return None


def _changes(old: dict, new: dict, prefix: str = "") -> list:
    """``key: old -> new`` for every difference between two nested dicts."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}")
    return out


class _Manifest:
    """``stages.json``: one record per stage (settings, inputs, outputs, seconds, status)."""

    def __init__(self, out: Path):
        self.path = out / MANIFEST
        self.records = {}
        if self.path.is_file():
            try:
                self.records = json.loads(self.path.read_text())["stages"]
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{self.path} is not a LightBunny stage record ({err}); "
                                 "remove it and run with --force to rebuild.") from None

    def save(self):
        write_json(self.path, {"format": "lightbunny-stages", "version": 1,
                               "stages": self.records})


class _Stages:
    """Runs the stages of one pipeline run: skip, refuse, resume or rebuild each one.

    ``plan`` maps each stage to ``(settings, outputs, partial)``: the settings it is built with,
    the paths it makes, and the paths of an unfinished run of it.
    """

    def __init__(self, out: Path, force: bool, plan: dict):
        self.out, self.force, self.plan = out, force, plan
        self.manifest = _Manifest(out)
        self.fingerprints, self.timings, self.ran = {}, {}, []

    def _settings_changes(self, name: str) -> list:
        """Why the existing output of ``name`` cannot be used with the planned settings."""
        settings, outputs, partial = self.plan[name]
        rec = self.manifest.records.get(name)
        present = [q for q in (*outputs, *partial) if Path(q).exists()]
        if rec is None:
            return (["made without a stage record (by an older lightbunny, another tool or by "
                     "hand)"] if present else [])
        return _changes(_plain_json(rec.get("settings", {})), _plain_json(settings))

    def precheck(self) -> None:
        """Stop before anything is written when a stage's recorded settings differ."""
        if self.force:
            return
        problems = [f"{name}: " + "; ".join(why) for name in self.plan
                    if (why := self._settings_changes(name))]
        if problems:
            raise StaleStageError(
                f"{self.out} holds stages made with other settings ("
                + " | ".join(problems) + "). Run again with --force to rebuild them (and the "
                "stages after them), or choose another --out.")

    def run(self, name: str, inputs: tuple, build, resumable: bool = False):
        """Run ``build()`` unless the stage's record matches; return its (possibly stored) result.

        ``build()`` returns a JSON-able result that is stored in the record.
        """
        settings, outputs, partial = self.plan[name]
        settings = _plain_json(settings)
        rec = self.manifest.records.get(name)
        inputs = {k: self.fingerprints[k] for k in inputs}
        key = _hash({"settings": settings, "inputs": inputs})
        present = [q for q in (*outputs, *partial) if Path(q).exists()]
        stats = {Path(q).name: _stat(q) for q in outputs}
        if (rec and rec.get("key") == key and rec.get("status") == "done"
                and rec.get("outputs") == stats):
            logger.info("%s: up to date (built in %.0f s), skipped", name, rec.get("seconds", 0))
            self.fingerprints[name] = rec["fingerprint"]
            self.timings[name] = rec.get("seconds", 0.0)
            return rec.get("result")
        resume = bool(resumable and rec and rec.get("key") == key
                      and rec.get("status") == "running")
        if present and not resume:
            why = self._settings_changes(name)
            if rec is not None:
                why += [f"its input {k} was rebuilt" for k in inputs
                        if rec.get("inputs", {}).get(k) != inputs[k]]
                if rec.get("status") == "done" and rec.get("outputs") != stats:
                    why += [f"{k} changed since it was written"
                            for k in stats if rec["outputs"].get(k) != stats[k]]
                if rec.get("status") != "done" and not why:
                    why = ["an earlier run did not finish it"]
            if not self.force:
                raise StaleStageError(
                    f"stage {name!r} in {self.out} does not match this run: "
                    + "; ".join(why or ["unknown difference"])
                    + ". Run again with --force to rebuild it (and the stages after it), or "
                    "choose another --out.")
            logger.warning("%s: rebuilding (%s)", name, "; ".join(why))
            for q in present:
                _remove(Path(q))
        self.manifest.records[name] = {"status": "running", "key": key, "settings": settings,
                                       "inputs": inputs}
        self.manifest.save()
        t = time.perf_counter()
        result = build()
        seconds = time.perf_counter() - t
        stats = {Path(q).name: _stat(q) for q in outputs}
        fingerprint = _hash({"key": key, "outputs": stats})
        self.manifest.records[name] = {
            "status": "done", "key": key, "settings": settings, "inputs": inputs,
            "outputs": stats, "fingerprint": fingerprint, "seconds": seconds,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "result": _plain_json(result)}
        self.manifest.save()
        self.fingerprints[name], self.timings[name] = fingerprint, seconds
        self.ran.append(name)
        return self.manifest.records[name]["result"]


def _plain_json(obj):
    """``obj`` as it reads back from JSON (tuples -> lists, paths -> strings)."""
    return json.loads(json.dumps(obj, default=str))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def publish_dir(partial: Path, final: Path) -> Path:
    """Move the finished folder ``partial`` onto ``final`` whole (the old one, if any, goes).

    The swap is two renames on one file system: at every moment ``final`` is either the complete
    old folder or the complete new one, never a mix.
    """
    partial, final = Path(partial), Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        _remove(old) if old.exists() else None
        os.replace(final, old)
    os.replace(partial, final)
    if old is not None:
        _remove(old)
    return final


def _alive(pid: str) -> bool:
    """Whether the process ``pid`` (a string of digits) is running."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_dir(final: Path):
    """Yield a fresh temporary folder next to ``final``; publish it there only on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.partial-*"):  # left by a killed run
        if not _alive(stale.name.rpartition("-")[2]):
            _remove(stale)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    tmp.mkdir()
    try:
        yield tmp
        publish_dir(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


# ----------------------------------------------------------------------------- the run
def _stage(name: str, n: int, total: int = 7):
    logger.info("[%d/%d] %s", n, total, name)


def seeds_used(cfg: Config) -> dict:
    """The seed each stage uses, derived from ``[pipeline] seed`` (recorded in config.json)."""
    s = int(cfg.pipeline.seed)
    return {"simulate": s, "sources": s, "dataset": s, "model": s, "evaluate": s + 1,
            "apply_recording": s}


def prepare_run(config, *, out=None, data_dir=None, device=None, threads=None) -> Config:
    """Validate ``config`` with the command-line overrides, and check what can fail early.

    Everything that can be checked before slow work is: the configuration, the data folder and
    the atlas, the device, the simulated regions and the demonstration region. Nothing is
    written.
    """
    from .atlas import load_atlas
    from .simulate.bank import parse_regions
    from .utils import resolve_device

    cfg = load_config(config)
    over = {k: v for k, v in (("out", out), ("data_dir", data_dir), ("device", device),
                              ("threads", threads)) if v is not None}
    if over:
        cfg = cfg.replace("pipeline", **{k: str(v) if k in ("out", "data_dir") else v
                                         for k, v in over.items()})
    p = cfg.pipeline
    if p.data_dir is not None and not Path(p.data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"data_dir {p.data_dir!r} is not a folder (it should hold the "
                                f"fsaverage994 files; see `lightbunny fetch`).")
    atlas = load_atlas(p.atlas, data_dir=p.data_dir)
    resolve_device(p.device)
    if cfg.simulate.regions is not None:
        parse_regions(cfg.simulate.regions if isinstance(cfg.simulate.regions, str)
                      else list(cfg.simulate.regions), atlas.n_regions)
    region = cfg.apply.region
    if isinstance(region, int) and region >= atlas.n_regions:
        raise ConfigError(f"[apply] region {region} is out of range: {atlas.name} has regions "
                          f"0..{atlas.n_regions - 1}.")
    if isinstance(region, str) and region not in atlas.region_names:
        import difflib

        close = difflib.get_close_matches(region, atlas.region_names, n=3)
        raise ConfigError(f"[apply] region {region!r} is not a region of {atlas.name}"
                          + (f" (close: {', '.join(close)})" if close else "") + ".")
    out_dir = Path(p.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} exists and is not a folder.")
    return cfg


def run_pipeline(config, *, out=None, data_dir=None, device=None, threads=None,
                 force: bool = False, progress: bool = True) -> dict:
    """Run every stage of ``config`` (path, shipped name, dict or :class:`Config`).

    Parameters
    ----------
    config : path | str | dict | Config
    out, data_dir, device, threads : optional
        Override ``[pipeline] out``, ``data_dir``, ``device`` and ``threads``.
    force : bool
        Rebuild stages whose settings or inputs changed (default: stop and name the changes).
    progress : bool

    Returns
    -------
    dict of paths: ``leadfield``, ``bank``, ``sources``, ``checkpoint``, ``evaluation``,
    ``apply``, ``report``, plus ``summary`` (evaluation rows), ``timings`` (s per stage, from
    the run that built it), ``ran`` (stages built by this call) and ``config``.

    Raises
    ------
    ConfigError, FileNotFoundError
        Before anything is written, on an invalid configuration or a missing data folder.
    StaleStageError
        When an existing stage's settings or inputs differ and ``force`` is False.
    """
    from .atlas import load_atlas
    from .utils import exclusive_lock

    cfg = prepare_run(config, out=out, data_dir=data_dir, device=device, threads=threads)
    p = cfg.pipeline
    out = Path(p.out)
    atlas = load_atlas(p.atlas, data_dir=p.data_dir)
    seeds = seeds_used(cfg)
    atlas_id = {"name": atlas.name, "n_regions": atlas.n_regions, "n_vertices": atlas.n_vertices}
    lf_path, bank_path = out / "leadfield.h5", out / "bank.h5"
    src_paths = {split: out / f"sources_{split}.h5" for split in ("train", "val", "test")}
    run_dir, ev_dir, ap_dir = out / "train", out / "evaluation", out / "apply"
    # settings, outputs and partial outputs of each stage
    plan = {
        "leadfield": ({"atlas": atlas_id, "montage": _plain(p.montage),
                       "orientation": p.orientation, "head_model": p.head_model},
                      [lf_path], []),
        "simulate": ({**cfg["simulate"], "seed": seeds["simulate"]}, [bank_path],
                     [bank_path.with_name(bank_path.name + ".d")]),
        "sources": ({**cfg["sources"], "atlas": atlas_id, "seed": seeds["sources"]},
                    list(src_paths.values()), []),
        "train": ({**cfg["train"], "dataset": cfg["dataset"], "seed": seeds["model"]},
                  [run_dir], [out / "train.partial"]),
        "evaluate": ({**cfg["evaluate"], "dataset": cfg["dataset"], "seed": seeds["evaluate"]},
                     [ev_dir / "summary.csv"], [ev_dir]),
        "apply": ({**cfg["apply"], "seed": seeds["apply_recording"]}, [ap_dir / "apply.json"],
                  [ap_dir]),
    }
    if not cfg.apply.enabled:
        plan.pop("apply")
    stages = _Stages(out, force, plan)
    stages.precheck()  # a changed setting stops the run here, before anything is written
    with exclusive_lock(out / ".run.lock", what=f"the pipeline output {out}"):
        # read the records again: another run may have finished while this one started
        stages = _Stages(out, force, plan)
        stages.precheck()
        return _run_stages(cfg, stages, atlas, seeds, plan, progress)


def _run_stages(cfg, stages, atlas, seeds, plan, progress) -> dict:
    """The stages of :func:`run_pipeline`, run while the output folder's lock is held."""
    from .leadfield import Leadfield, make_leadfield
    from .utils import register_job, set_threads

    p = cfg.pipeline
    out = Path(p.out)
    lf_path, bank_path = plan["leadfield"][1][0], plan["simulate"][1][0]
    src_paths = {split: out / f"sources_{split}.h5" for split in ("train", "val", "test")}
    run_dir, ev_dir, ap_dir = out / "train", out / "evaluation", out / "apply"
    register_job()
    set_threads(p.threads)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {**cfg.to_dict(), "out_resolved": str(out.resolve()),
                                     "seeds": seeds, "versions": versions()})
    paths = {"out": out}
    t0 = time.perf_counter()

    _stage("atlas and leadfield", 1)

    def build_leadfield():
        lf = make_leadfield(atlas, _montage(p.montage), orientation=p.orientation,
                            head_model=p.head_model, data_dir=p.data_dir)
        lf.save(lf_path)
        return {"n_chans": lf.n_chans}

    stages.run("leadfield", (), build_leadfield)
    leadfield = Leadfield.load(lf_path)
    paths["leadfield"] = lf_path

    _stage("neural-mass simulation -> spike bank", 2)
    stages.run("simulate", ("leadfield",),
               lambda: _simulate_stage(cfg, atlas, leadfield, bank_path, progress),
               resumable=True)
    from .spikes import SpikeBank

    bank = SpikeBank.open(bank_path)
    paths["bank"] = bank_path

    _stage("synthetic sources", 3)
    stages.run("sources", (), lambda: _sources_stage(cfg, atlas, src_paths, progress))
    paths["sources"] = src_paths

    _stage(f"training {cfg.train.model}", 4)
    train_result = stages.run(
        "train", ("leadfield", "simulate", "sources"),
        lambda: _train_in_partial(cfg, bank, leadfield, src_paths, run_dir,
                                  out / "train.partial", progress),
        resumable=True)
    paths["checkpoint"] = run_dir / "best.pt"

    _stage("evaluation against classical inverses", 5)
    summary = stages.run(
        "evaluate", ("leadfield", "simulate", "sources", "train"),
        lambda: _evaluate_stage(cfg, atlas, bank, leadfield, paths, ev_dir, progress))
    paths["evaluation"] = ev_dir

    _stage("real-EEG path on a simulated EDF recording", 6)
    if cfg.apply.enabled:
        paths["apply"] = stages.run(
            "apply", ("leadfield", "train"),
            lambda: _apply_stage(cfg, atlas, leadfield, paths["checkpoint"], ap_dir))
    else:
        paths["apply"] = {}

    _stage("report", 7)
    timings = {**stages.timings, "this_run": time.perf_counter() - t0}
    timings["total"] = sum(v for k, v in stages.timings.items())
    paths["report"] = _write_report(out, cfg, paths, summary, timings, train_result,
                                    seeds, stages.ran)
    write_json(out / "timings.json", timings)
    return {**paths, "summary": summary, "timings": timings, "ran": stages.ran, "config": cfg}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _montage(value):
    """A montage from the configuration: a name, a comma-separated list or a list of names."""
    if isinstance(value, str) and "," in value:
        return [c.strip() for c in value.split(",") if c.strip()]
    return list(value) if isinstance(value, tuple) else value


# --------------------------------------------------------------------------------- stages
def _simulate_stage(cfg, atlas, leadfield, path: Path, progress: bool) -> dict:
    from .simulate import simulate_bank

    s = cfg.simulate
    regions = list(s.regions) if isinstance(s.regions, tuple) else s.regions
    device = cfg.pipeline.device
    bank = simulate_bank(atlas, path, regions=regions, duration=float(s.duration),
                         backend=s.backend, batch_size=int(s.batch_size),
                         seed=int(cfg.pipeline.seed), gain=leadfield.gain,
                         device=device,
                         scheduler=s.scheduler, progress=progress,
                         threads=cfg.pipeline.threads)
    summary = bank.summary()
    bank.close()
    return {"n_clips_total": summary["n_clips_total"],
            "n_regions_simulated": summary["n_regions_simulated"]}


def _sources_stage(cfg, atlas, paths: dict, progress: bool) -> dict:
    from .sources import make_sources

    s = cfg.sources
    h = s.half_distance
    out = {}
    for split, path in paths.items():
        src = make_sources(atlas, split=split, n_iter=getattr(s, f"n_iter_{split}"),
                           n_sources=int(s.n_sources), seed=int(cfg.pipeline.seed),
                           half_distance=tuple(h) if isinstance(h, (list, tuple)) else h,
                           progress=progress)
        src.save(path)
        out[split] = len(src)
    return out


def dataset_kwargs(dataset: dict, *, seed: int, for_evaluation: bool = False) -> dict:
    """Keyword arguments of :func:`lightbunny.dataset.make_dataset` from a ``[dataset]`` table.

    Samples whose centre region has no clip borrow the clips of the nearest region of their patch
    (``missing_clips = "neighbour"``, explained once) unless the table says ``"skip"`` or
    ``"raise"``. For evaluation, ``snr_db`` is left out: each evaluation SNR
    (``[evaluate] snrs``) sets its own.
    """
    kwargs = {"seed": int(seed), "missing_clips": "neighbour", **dict(dataset)}
    for key in ("realistic_ratio", "sbr_db", "clip_fractions", "snr_db"):
        if isinstance(kwargs.get(key), tuple):
            kwargs[key] = list(kwargs[key])
    if for_evaluation:
        kwargs.pop("snr_db", None)
        kwargs.pop("seed")
    return kwargs


class _ThreadPolicedDataset:
    """A dataset whose ``get_batch`` first applies the CPU thread policy (every few seconds), so
    a long training run gives up cores when other LightBunny jobs start."""

    def __init__(self, dataset, policy):
        self._dataset, self._policy = dataset, policy

    def get_batch(self, *args, **kwargs):
        self._policy.update()
        return self._dataset.get_batch(*args, **kwargs)

    def __len__(self):
        return len(self._dataset)

    def __getattr__(self, name):
        return getattr(self._dataset, name)


def train_stage(train_sources, val_sources, bank, leadfield, out_dir, *, train=None,
                dataset: dict | None = None, seed: int = 0, device: str = "auto",
                resume: bool = False, progress: bool = True, threads: int | None = None):
    """Build the datasets and the network of ``train`` and train it (``lightbunny train`` and
    the pipeline's training stage).

    Parameters
    ----------
    train_sources, val_sources : Sources or path
    bank : SpikeBank or path
    leadfield : Leadfield
    out_dir : path
    train : TrainConfig or dict, optional
        ``[train]`` settings (model, model_config, epochs, batch_size, recipe, options),
        validated by :func:`lightbunny.config.load_config`.
    dataset : dict, optional
        ``[dataset]`` options of :class:`lightbunny.dataset.SyntheticEEGDataset`.
    seed : int
        Seed of the model's initialisation, the shuffling and the data.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    resume : bool
        Continue from ``out_dir/last.pt`` when it exists.
    threads : int, optional
        torch CPU threads; default: the thread policy (:class:`lightbunny.utils.ThreadPolicy`),
        checked again every few seconds while training on the CPU.

    Returns
    -------
    best : Path
        The best checkpoint.
    info : dict
        Best epoch and validation loss, epochs run, early stop, validation loss of zeros.
    """
    from .config import TrainConfig
    from .dataset import make_dataset
    from .models import build_model
    from .train import train as fit
    from .utils import ThreadPolicy, resolve_device

    if not isinstance(train, TrainConfig):
        cfg = load_config({"train": dict(train or {}), "dataset": dict(dataset or {})})
        train, dataset = cfg.train, cfg.dataset
    kw = dataset_kwargs(dataset or {}, seed=seed)
    train_set = make_dataset(train_sources, bank, leadfield, **kw)
    val_set = make_dataset(val_sources, bank, leadfield, **kw)
    model = build_model(train.model, random_state=seed, n_chans=train_set.n_chans,
                        n_times=train_set.n_times, n_sources=train_set.n_regions,
                        **train.model_config)
    logger.info("%s: %s parameters, %d training / %d validation samples (%s, %d channels)",
                train.model, f"{model.n_parameters():,}", len(train_set), len(val_set),
                train_set.atlas_name, train_set.n_chans)
    policy = ThreadPolicy(threads)
    policy.update()
    if resolve_device(device).type == "cpu" and threads is None:
        train_set = _ThreadPolicedDataset(train_set, policy)
    options = dict(train.options)
    if options.get("patience", 10) == 0:  # 0: never stop early (one meaning, CLI and config)
        options["patience"] = None
    result = fit(model, train_set, val_set, out_dir=out_dir, epochs=int(train.epochs),
                 batch_size=int(train.batch_size), seed=seed, device=device, resume=resume,
                 recipe=train.recipe, progress=progress, **options)
    info = {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
            "epochs_run": len(result.history), "stopped_early": result.stopped_early,
            "val_loss_zero": result.history[-1].get("val_loss_zero") if result.history else None}
    return Path(result.best_checkpoint), info


def _train_in_partial(cfg, bank, leadfield, sources: dict, run: Path, partial: Path,
                      progress: bool) -> dict:
    """Train in ``partial`` (resumed from its last.pt), then move it to ``run`` whole."""
    _, info = train_stage(sources["train"], sources["val"], bank, leadfield, partial,
                          train=cfg.train, dataset=cfg.dataset, seed=int(cfg.pipeline.seed),
                          device=cfg.pipeline.device, resume=(partial / "last.pt").is_file(),
                          progress=progress, threads=cfg.pipeline.threads)
    write_json(partial / "done.json", info)
    publish_dir(partial, run)
    return info


def _evaluate_stage(cfg, atlas, bank, leadfield, paths, out: Path, progress: bool) -> list:
    from .evaluate import evaluate

    ev = cfg.evaluate
    with atomic_dir(out) as tmp:
        res = evaluate(paths["sources"]["test"], bank, leadfield, atlas, out_dir=tmp,
                       methods=list(ev.methods), checkpoints=[paths["checkpoint"]],
                       snrs=list(ev.snrs), n_samples=ev.n_samples,
                       seed=seeds_used(cfg)["evaluate"], device=cfg.pipeline.device,
                       progress=progress,
                       dataset_kwargs=_evaluation_dataset_kwargs(cfg))
    return res["summary"]


def _evaluation_dataset_kwargs(cfg) -> dict:
    """Dataset options of the evaluation: ``[dataset]`` then ``[evaluate] dataset``, through
    :func:`dataset_kwargs` (no ``snr_db``: each ``[evaluate] snrs`` row sets its own). ``[dataset]
    randomise`` is left out: domain randomisation is a training augmentation and the test samples
    are the evaluation's own (``[evaluate] dataset`` may still set it)."""
    training = {k: v for k, v in dict(cfg.dataset).items() if k != "randomise"}
    return dataset_kwargs({**training, **cfg.evaluate.dataset}, seed=0, for_evaluation=True)


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


def write_demo_recording(path, leadfield, region: int, *, sfreq: float = 256.0,
                         seconds: float = 4.0, missing=(), ecg: bool = False,
                         seed: int = 0) -> list:
    """The clinical demo recording: a known source written to EDF as a clinical system would.

    :func:`simulate_recording` of ``region`` (spikes once a second, 20 dB sensor noise), with
    the channels named the clinical way (``EEG FP1-REF``; T7/T8/P7/P8 by their old names
    T3/T4/T5/T6), the channels in ``missing`` left out and, with ``ecg``, an ECG channel added;
    written to ``path`` (EDF). The real-EEG path must undo all of it. Returns the channel names
    of the file.
    """
    import mne

    from .utils import OLD_NAMES

    eeg = simulate_recording(leadfield, region, sfreq=sfreq, seconds=seconds, seed=seed)
    keep = [i for i, c in enumerate(leadfield.ch_names) if c not in set(missing)]
    old = {v: k for k, v in OLD_NAMES.items()}
    names = [f"EEG {old.get(leadfield.ch_names[i], leadfield.ch_names[i]).upper()}-REF"
             for i in keep]
    data, types = eeg[keep], ["eeg"] * len(keep)
    if ecg:
        ecg_trace = np.random.default_rng([seed, 1]).standard_normal((1, eeg.shape[1])) * 5e-4
        data, names, types = np.vstack([data, ecg_trace]), names + ["ECG"], types + ["ecg"]
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, types), verbose="error")
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return names


def _apply_stage(cfg, atlas, leadfield, checkpoint, out: Path) -> dict:
    from .apply import run_apply

    ap = cfg.apply
    region = ap.region
    if region is None:  # the region whose leadfield column is strongest: a clear test case
        region = int(np.argmax(np.abs(leadfield.average_referenced()).max(0)))
    elif isinstance(region, str):
        region = atlas.region_names.index(region)
    unknown = [c for c in ap.missing if c not in leadfield.ch_names]
    if unknown:
        raise ValueError(f"[apply] missing names channels the montage lacks: {unknown}; "
                         f"channels: {', '.join(leadfield.ch_names)}.")
    sfreq = float(ap.sfreq)
    results = {"true_region": region, "missing": list(ap.missing)}
    with atomic_dir(out) as tmp:
        edf = tmp / "recording.edf"
        write_demo_recording(edf, leadfield, region, sfreq=sfreq, missing=ap.missing,
                             seed=seeds_used(cfg)["apply_recording"])
        results["recording"] = out / "recording.edf"
        for label, kw in (("network", {"checkpoint": checkpoint}),
                          ("sloreta", {"method": "sLORETA"})):
            # the leadfield also gives the network its electrode positions (interpolation,
            # topomap): without it deepsif75's Nz/TP11/TP12 have none
            res = run_apply(edf, tmp / label, atlas=atlas, leadfield=leadfield, **kw)
            top = [int(r) for r in res.top_regions(3)]
            results[label] = {"dir": out / label, "top_regions": top,
                              "top_names": [atlas.region_names[r] for r in top],
                              "hit": bool(top[0] == region or atlas.adjacency[region, top[0]])}
            logger.info("%s: most active region %s (true %s)", label,
                        atlas.region_names[top[0]], atlas.region_names[region])
        write_json(tmp / "apply.json", results)
    return json.loads(json.dumps(results, default=str))


def _write_report(out: Path, cfg, paths, summary, timings, train_result, seeds, ran) -> Path:
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
<h2>Time per stage (s, measured by the run that built it)</h2>{_html_table({k: round(v, 1) for k, v in timings.items()}, ("stage", "s"))}
<p>Stages built by this run: {html.escape(', '.join(ran) or 'none (all up to date)')}</p>
<h2>Configuration</h2><p>Output folder: {html.escape(str(out.resolve()))}</p>
{''.join(f"<h3>[{html.escape(k)}]</h3>" + _html_table(v, ("option", "value"))
         for k, v in cfg.to_dict().items() if isinstance(v, dict))}
<h2>Seeds used</h2>{_html_table(seeds, ("stage", "seed"))}
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
