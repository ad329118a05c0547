"""Model commands of the command line: train, apply, evaluate, run, quickstart, benchmark."""

from __future__ import annotations

import argparse
import json

from .cli_common import (
    _add_data_dir,
    _add_device,
    _add_threads,
    _amplitude_snr,
    _device,
    _montage_arg,
    _moved,
    command,
)


# ------------------------------------------------------------------------------ train
def _train_args(p):
    # no import of .models here: building the parser must not import torch
    p.add_argument("--model", default="lightbunny",
                   help="network: lightbunny (default), deepsif or bunny")
    p.add_argument("--model-config", default=None, metavar="JSON",
                   help='hyperparameters as JSON, e.g. \'{"d_model": 128}\' (sizes come from '
                        'the data)')
    p.add_argument("--train-sources", required=True,
                   help="sources file of the training split (.h5)")
    p.add_argument("--val-sources", required=True,
                   help="sources file of the validation split (.h5)")
    p.add_argument("--bank", required=True, help="spike bank file (.h5)")
    p.add_argument("--leadfield", default=None,
                   help="leadfield file (.h5) from `lightbunny leadfield --out`; default: computed "
                        "(or read from cache) for the sources' atlas and --montage")
    p.add_argument("--montage", default="standard_1020_64",
                   help="montage when --leadfield is not given (default standard_1020_64)")
    _add_data_dir(p)
    p.add_argument("--out", required=True, help="run folder: checkpoints, history, loss curve")
    p.add_argument("--epochs", type=int, default=50,
                   help="training epochs, at most (--patience may stop earlier; the quickstart "
                        "uses 6). Default 50")
    p.add_argument("--batch-size", type=int, default=32, help="samples per optimiser step")
    p.add_argument("--recipe", default="lightbunny", choices=("lightbunny", "seed"),
                   help="training recipe: defaults of the options below (lightbunny: balanced "
                        "MSE + cosine loss, Adam 1e-3 with warm-up and cosine decay, gradient "
                        "clipping, new samples every epoch; seed: the research code's constant "
                        "Adam 5e-4 and MSE). Default lightbunny")
    p.add_argument("--lr", type=float, default=None,
                   help="peak Adam learning rate (default: the recipe's, 1e-3 or seed 5e-4)")
    p.add_argument("--loss", default=None,
                   choices=("mse", "l1", "smooth_l1", "balanced_mse", "cosine"),
                   help="loss (default: the recipe's, balanced_mse or seed mse)")
    p.add_argument("--cosine-weight", type=float, default=None,
                   help="weight of the cosine loss term (default: the recipe's, lightbunny 1, "
                        "seed 0)")
    p.add_argument("--warmup-epochs", type=float, default=None,
                   help="linear learning-rate warm-up, in epochs (default: the recipe's, "
                        "lightbunny 1, seed 0)")
    p.add_argument("--lr-schedule", default=None, choices=("constant", "cosine"),
                   help="after the warm-up (default: the recipe's, lightbunny cosine, seed "
                        "constant)")
    p.add_argument("--min-lr-ratio", type=float, default=None,
                   help="final learning rate of the cosine schedule / --lr (default: the recipe's, "
                        "lightbunny 0.05)")
    p.add_argument("--grad-clip", type=float, default=None,
                   help="clip the gradient norm to this value, 0 for none (default: the recipe's, "
                        "lightbunny 1, seed 0)")
    p.add_argument("--resample", default=None, action=argparse.BooleanOptionalAction,
                   help="new random clips, SNRs and noise for the training samples every epoch "
                        "(default: the recipe's, lightbunny yes, seed no)")
    p.add_argument("--randomise", default="none", metavar="none|default|JSON",
                   help="domain randomisation of the training data (lightbunny.randomise): 'none' "
                        "(default), 'default' (1-3 sources, extents, waveform families, "
                        "amplitudes, coloured/real noise) or JSON of its options, e.g. "
                        "'{\"noise\": {\"white\": 0.5, \"coloured\": 0.5}}'")
    p.add_argument("--patience", type=int, default=10,
                   help="epochs without a lower validation loss before stopping (0: never stop)")
    p.add_argument("--seed", type=int, default=0, help="seed of the model, shuffling and data")
    _add_device(p, "auto")
    _add_threads(p)
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"),
                   help="bf16 autocast (auto: on CUDA only)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--deterministic", action="store_true",
                   help="torch deterministic algorithms (exact resume on GPU; slower)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--missing-clips", default="neighbour", choices=("neighbour", "skip", "raise"),
                   help="samples whose centre region has no spike clip in the split: use the "
                        "clips of the nearest region of its patch that has some (default), "
                        "leave them out with a warning, or stop with an error")


@command("train", "train a network on synthetic (EEG, source) pairs; checkpoints each epoch")(
    _train_args)
def _train(args):
    from .config import load_config
    from .leadfield import Leadfield, make_leadfield
    from .pipeline import train_stage
    from .sources import Sources
    from .train import init_distributed_from_env
    from .utils import register_job, set_threads

    try:
        model_config = json.loads(args.model_config) if args.model_config else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"--model-config is not valid JSON ({err}): "
                         f"{args.model_config!r}") from None
    randomise = args.randomise
    if randomise.lstrip().startswith("{"):
        try:
            randomise = json.loads(randomise)
        except json.JSONDecodeError as err:
            raise ValueError(f"--randomise is not valid JSON ({err}): {randomise!r}") from None
    options = {k: v for k, v in (
        ("lr", args.lr), ("loss", args.loss), ("patience", args.patience), ("amp", args.amp),
        ("deterministic", args.deterministic), ("cosine_weight", args.cosine_weight),
        ("warmup_epochs", args.warmup_epochs), ("lr_schedule", args.lr_schedule),
        ("min_lr_ratio", args.min_lr_ratio), ("grad_clip", args.grad_clip),
        ("resample", args.resample)) if v is not None}
    # the same validation as a [train] table of `lightbunny run`
    cfg = load_config({"train": {"model": args.model, "model_config": model_config,
                                 "epochs": args.epochs, "batch_size": args.batch_size,
                                 "recipe": args.recipe, "options": options},
                       "dataset": {"missing_clips": args.missing_clips,
                                   "randomise": randomise}})
    init_distributed_from_env()  # under torchrun: join the process group (DDP training)
    register_job()
    set_threads(args.threads)
    train_sources, val_sources = Sources.load(args.train_sources), Sources.load(args.val_sources)
    if args.leadfield:
        leadfield = Leadfield.load(args.leadfield)
    else:
        from .atlas import load_atlas

        leadfield = make_leadfield(load_atlas(train_sources.atlas_name, data_dir=args.data_dir),
                                   _montage_arg(args.montage), data_dir=args.data_dir)
    best, info = train_stage(train_sources, val_sources, args.bank, leadfield, args.out,
                             train=cfg.train, dataset=cfg.dataset, seed=args.seed,
                             device=args.device, resume=args.resume,
                             progress=not args.no_progress, threads=args.threads)
    print(f"done: {info['epochs_run']} epochs, best validation loss {info['best_val_loss']:.4g} "
          f"at epoch {info['best_epoch']} ({(info['val_loss_zero'] or float('nan')):.4g} for a "
          f"zero prediction){'; stopped early' if info['stopped_early'] else ''}")
    print(f"best model: {best}; history and loss curve in {args.out}")


# ------------------------------------------------------------------------------ apply
def _apply_args(p):
    p.add_argument("recordings", nargs="+", metavar="RECORDING",
                   help="EEG files (.edf, .bdf, .set, .vhdr, .fif; .mat, .npy, .npz arrays with "
                        "--sfreq and --montage or --ch-names) or glob patterns ('seg_*.mat'); "
                        "all are imaged in one process")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="trained network (best.pt / last.pt) or the name of a model "
                        "(lightbunny models); repeat for several")
    p.add_argument("--method", default=None,
                   help="classical inverse(s), comma-separated: MNE, dSPM, sLORETA, eLORETA, "
                        "LCMV (with several models a comparison page is written per recording)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--atlas", default=None,
                   help="atlas (with --method; default: the imported leadfield's by its region "
                        "count, else tvb76; with --checkpoint it must match)")
    _add_data_dir(p)
    p.add_argument("--montage", default=None,
                   help="montage name (e.g. deepsif75) or comma-separated channels: the "
                        "leadfield's channels with --method, the rows of array files, electrode "
                        "positions of a network")
    p.add_argument("--ch-names", default=None,
                   help="comma-separated row names of array files (instead of --montage)")
    p.add_argument("--sfreq", type=float, default=None, help="sampling rate of array files, Hz")
    p.add_argument("--variable", default=None, help="array name inside .mat/.npz files")
    p.add_argument("--leadfield", default=None,
                   help="leadfield: .h5 (lightbunny leadfield --out), or an imported .mat/.npy/"
                        ".npz array (region- or vertex-level, detected by shape) or -fwd.fif")
    p.add_argument("--snr", type=_amplitude_snr, default=3.0,
                   help="classical regularisation: amplitude SNR, lambda2 = 1/snr^2 (default 3)")
    p.add_argument("--tmin", type=float, default=None, help="start of the range, s")
    p.add_argument("--tmax", type=float, default=None, help="end of the range, s")
    p.add_argument("--events", default=None,
                   help="average epochs around events: comma-separated onsets (s) or annotation "
                        "names")
    p.add_argument("--epoch-tmin", type=float, default=-0.5, help="epoch start around events, s")
    p.add_argument("--epoch-tmax", type=float, default=0.5, help="epoch end (excluded), s")
    p.add_argument("--l-freq", type=float, default=None, help="high-pass edge of the EEG, Hz")
    p.add_argument("--h-freq", type=float, default=None, help="low-pass edge of the EEG, Hz")
    p.add_argument("--source-band", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="band-pass the source time courses, Hz (zero-phase FIR), before power")
    p.add_argument("--envelope", action="store_true",
                   help="with --source-band: take the Hilbert amplitude envelope")
    p.add_argument("--average-segments", action="store_true",
                   help="also average the normalised power maps over all recordings/segments")
    p.add_argument("--n-top", type=int, default=10, help="regions listed per report (default 10)")
    p.add_argument("--missing", default="interpolate", choices=("interpolate", "zero"),
                   help="fill model channels absent from the file by spherical splines "
                        "(default) or zeros (the seed)")
    p.add_argument("--min-matched", type=float, default=0.25,
                   help="fewest model channels the file must supply: a fraction (<= 1) or a "
                        "count (default 0.25)")
    p.add_argument("--units", default="auto", choices=("auto", "V", "uV", "none"),
                   help="auto: detect uV/mV stored as V by amplitude (default); V or uV: the "
                        "values' unit; none: scale-free data (no unit check, shown as a.u.)")
    p.add_argument("--overlap", type=float, default=0.5,
                   help="window overlap of a network, fraction (default 0.5)")
    p.add_argument("--short", default="pad", choices=("pad", "error"),
                   help="a recording shorter than the network's window: zero-pad or refuse")
    _add_device(p, "cpu")
    p.add_argument("--no-figures", action="store_true", help="do not draw the PNG figures")


@command("apply", "image real EEG recordings with trained networks or classical methods")(
    _apply_args)
def _apply(args):
    from .clinical import apply_many

    if not args.checkpoint and not args.method:
        raise ValueError("give --checkpoint (a trained network) or --method (a classical "
                         "inverse such as sLORETA)")
    montage = args.montage.split(",") if args.montage and "," in args.montage else args.montage
    min_matched = int(args.min_matched) if args.min_matched > 1 else args.min_matched
    methods = [m.strip() for m in args.method.split(",") if m.strip()] if args.method else []
    res = apply_many(args.recordings, args.out, checkpoints=args.checkpoint, methods=methods,
                     atlas=args.atlas, montage=montage, leadfield=args.leadfield,
                     data_dir=args.data_dir, sfreq=args.sfreq,
                     ch_names=args.ch_names.split(",") if args.ch_names else None,
                     variable=args.variable, source_band=args.source_band,
                     envelope=args.envelope, average_segments=args.average_segments,
                     snr=args.snr, overlap=args.overlap, short=args.short, device=args.device,
                     figures=not args.no_figures, n_top=args.n_top, tmin=args.tmin,
                     tmax=args.tmax, events=args.events, epoch_tmin=args.epoch_tmin,
                     epoch_tmax=args.epoch_tmax, l_freq=args.l_freq, h_freq=args.h_freq,
                     missing=args.missing, min_matched=min_matched, units=args.units)
    for (label, model), result in res["results"].items():
        p = result.prepared
        print(f"{model} on {label}: {result.source.shape[0]} samples at {p.sfreq:g} Hz x "
              f"{result.source.shape[1]} regions ({p.kind}"
              f"{f', {p.n_averaged} epochs averaged' if p.n_averaged > 1 else ''})")
        for line in p.report.summary().splitlines():
            print(f"  {line}")
    for row in res["rows"]:
        print(f"  {row['recording']} / {row['model']}: most active {row['top_region']} "
              f"({row['label'] or row['lobe']}, {row['hemisphere']}); "
              f"{row['n_active']} active regions")
    print(f"summary: {res['summary_md']}; wrote {len(res['rows'])} result(s) to {args.out}")
    if res["failed"]:
        raise ValueError(f"{len(res['failed'])} recording/model pair(s) not imaged (listed in "
                         f"{res['summary_md']}): " + "; ".join(
                             f"{f['recording']}: {f['error']}" for f in res["failed"][:5]))


# ------------------------------------------------------------------------------ evaluate
def _evaluate_args(p):
    p.add_argument("--sources", required=True, help="test sources file (lightbunny sources)")
    p.add_argument("--bank", required=True, help="spike bank file (lightbunny simulate)")
    p.add_argument("--leadfield", default=None, help="leadfield file (.h5); default: computed")
    _add_data_dir(p)
    p.add_argument("--montage", default="standard_1020_64",
                   help="montage of a computed leadfield (name or comma-separated channels)")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="trained checkpoint or model name (lightbunny models) to evaluate "
                        "(repeat for several)")
    p.add_argument("--methods", default="sloreta,eloreta,mne,dspm",
                   help="classical methods, comma-separated (sloreta, eloreta, mne, dspm, lcmv; "
                        "'none' for checkpoints only)")
    p.add_argument("--snr-db", default="5,10,15,20",
                   help="sensor SNRs in dB, comma-separated ('inf' for no sensor noise)")
    p.add_argument("--snr", nargs="?", action=_moved("--snr-db", "--snr is the regularisation "
                                                     "SNR of `apply`, an amplitude ratio"),
                   help=argparse.SUPPRESS)
    p.add_argument("--n-samples", type=int, default=None, help="evaluate the first N samples")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (same samples per method)")
    p.add_argument("--data-recipe", default="lightbunny", choices=("lightbunny", "seed"),
                   help="how test samples are mixed (see lightbunny.dataset)")
    p.add_argument("--recipe", nargs="?", action=_moved("--data-recipe", "--recipe is the "
                                                        "training recipe of `train`"),
                   help=argparse.SUPPRESS)
    _add_device(p, "cpu")
    p.add_argument("--missing-clips", default="neighbour", choices=("neighbour", "skip", "raise"),
                   help="test samples whose centre region has no clip: borrow the nearest "
                        "patch region's clips (default), leave out, or stop")
    p.add_argument("--inverse-leadfield", default=None, metavar="LF.h5",
                   help="head-model mismatch: classical methods invert with this leadfield "
                        "(e.g. `lightbunny leadfield --head-model sphere --out LF.h5`) while the "
                        "EEG is simulated with --leadfield")
    p.add_argument("--out", required=True, help="output folder for the report")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


@command("evaluate", "compare trained networks and classical inverses on the same test samples")(
    _evaluate_args)
def _evaluate(args):
    from .atlas import load_atlas
    from .evaluate import evaluate
    from .leadfield import Leadfield, make_leadfield
    from .sources import load_sources

    sources = load_sources(args.sources)
    atlas = load_atlas(sources.atlas_name, data_dir=args.data_dir)
    if args.leadfield:
        leadfield = Leadfield.load(args.leadfield)
    else:
        leadfield = make_leadfield(atlas, _montage_arg(args.montage), data_dir=args.data_dir)
    inverse_lf = Leadfield.load(args.inverse_leadfield) if args.inverse_leadfield else None
    methods = [] if args.methods.strip().lower() == "none" else args.methods.split(",")
    try:
        snrs = [float(x) for x in args.snr_db.split(",")]
    except ValueError:
        raise ValueError(f"--snr-db must be numbers in dB, comma-separated (e.g. 5,10,15,20); "
                         f"got {args.snr_db!r}.") from None
    from pathlib import Path

    from .pipeline import atomic_dir

    with atomic_dir(Path(args.out)) as tmp:  # the folder is replaced whole, or not at all
        res = evaluate(sources, args.bank, leadfield, atlas, out_dir=tmp, methods=methods,
                       inverse_leadfield=inverse_lf, checkpoints=args.checkpoint, snrs=snrs,
                       n_samples=args.n_samples, seed=args.seed, device=args.device,
                       progress=not args.no_progress, dataset_kwargs={"recipe": args.data_recipe,
                                       "missing_clips": args.missing_clips})
        summary = res["summary_md"].read_text()
    print(summary)
    print(f"report: {Path(args.out) / res['report'].name}")


# ------------------------------------------------------------------------------ run / quickstart
def _run_args(p):
    p.add_argument("config", help="TOML file of parameters, or a shipped one: quickstart, "
                                   "seed994, deepsif75")
    p.add_argument("--out", default=None, help="output folder (overrides [pipeline] out)")
    _add_pipeline_flags(p)


def _add_pipeline_flags(p):
    """Flags shared by ``run`` and ``quickstart`` (each overrides its [pipeline] key)."""
    p.add_argument("--data-dir", default=None,
                   help="folder of the fsaverage994 files (overrides [pipeline] data_dir)")
    p.add_argument("--device", default=None, type=_device,
                   help="auto, cpu, cuda or cuda:N (overrides [pipeline] device)")
    _add_threads(p)
    p.add_argument("--force", action="store_true",
                   help="rebuild stages whose settings or inputs changed (default: stop and "
                        "name the changes)")
    p.add_argument("--check", action="store_true",
                   help="validate the configuration and print it; run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run_config(config, args):
    from .pipeline import prepare_run, run_pipeline

    kw = {"out": args.out, "data_dir": args.data_dir, "device": args.device,
          "threads": args.threads}
    if args.check:
        cfg = prepare_run(config, **kw)
        print(json.dumps(cfg.to_dict(), indent=2))
        print(f"configuration OK; outputs would go to {cfg.pipeline.out}")
        return
    _print_run(run_pipeline(config, force=args.force, progress=not args.no_progress, **kw))


@command("run", "run the whole pipeline from one configuration file, skipping finished stages")(
    _run_args)
def _run(args):
    _run_config(args.config, args)


def _print_run(res):
    from .pipeline import _headline

    print(_headline(res["summary"]))
    ran = ", ".join(res["ran"]) or "none (all stages up to date)"
    print(f"stages built now: {ran}; {res['timings']['this_run']:.0f} s (all stages "
          f"{res['timings']['total']:.0f} s); report: {res['report']}")


def _quickstart_args(p):
    p.add_argument("--out", default="source/quickstart", help="output folder")
    _add_pipeline_flags(p)


@command("quickstart", "the whole pipeline in minutes on the embedded default atlas (tvb76)")(
    _quickstart_args)
def _quickstart(args):
    _run_config("quickstart", args)


# ------------------------------------------------------------------------------ benchmark
def _benchmark_args(p):
    p.add_argument("--atlas", default="tvb76",
                   help="atlas name (default tvb76, the fast smoke run; fsaverage994 for the "
                        "full-scale benchmark)")
    _add_data_dir(p)
    p.add_argument("--leadfield", default=None,
                   help="nominal leadfield file (.h5) that every method inverts; default: "
                        "computed (or read from cache) for --montage")
    p.add_argument("--montage", default="standard_1020_64",
                   help="montage of a computed leadfield (name or comma-separated channels; "
                        "default standard_1020_64)")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="trained network or model name (lightbunny models) to score (repeat "
                        "for several; default none)")
    p.add_argument("--bank", default=None,
                   help="spike bank (.h5) for the neural-mass spike waveforms (default none: "
                        "conditions with spikes are skipped)")
    p.add_argument("--train-sources", action="append", default=[],
                   help="training sources file(s) whose patches test patches must differ from "
                        "(default: every candidate patch of make_sources(seed=--train-seed))")
    p.add_argument("--train-seed", type=int, default=0,
                   help="seed the training sources were made with (default 0)")
    p.add_argument("--conditions", default=None,
                   help="comma-separated condition names (default all; see "
                        "lightbunny.benchmark.CONDITIONS)")
    p.add_argument("--methods", default="MNE,dSPM,sLORETA,eLORETA,LCMV,MxNE,gamma-MAP,Champagne",
                   help="classical and sparse methods, comma-separated ('none' for networks "
                        "only; default all eight); the random floor and the ceilings are always "
                        "added")
    p.add_argument("--budget", default="small", choices=("smoke", "small", "full"),
                   help="samples per condition, tuning grid and figures (default small)")
    p.add_argument("--n-samples", type=int, default=None,
                   help="samples per condition (default: the budget's, 6 / 24 / 200)")
    p.add_argument("--split", default="novel", choices=("novel", "centre-disjoint"),
                   help="novel: no test patch equals a training patch (default); "
                        "centre-disjoint: test centres from one spatial fold")
    p.add_argument("--n-folds", type=int, default=5,
                   help="spatial folds (centre-disjoint; default 5)")
    p.add_argument("--fold", type=int, default=0, help="the test fold (centre-disjoint; default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the test samples (default 0)")
    p.add_argument("--device", default="cpu", help="torch device of the checkpoints (default cpu)")
    p.add_argument("--no-figures", action="store_true", help="no HTML report and figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output folder for the report")


@command("benchmark", "the generalisation benchmark: networks and classical/sparse inverses on "
                      "named out-of-prior conditions")(_benchmark_args)
def _benchmark(args):
    from .atlas import load_atlas
    from .benchmark import run_benchmark
    from .leadfield import Leadfield, make_leadfield

    atlas = load_atlas(args.atlas, data_dir=args.data_dir)
    if args.leadfield:
        leadfield = Leadfield.load(args.leadfield)
    else:
        montage = args.montage.split(",") if "," in args.montage else args.montage
        leadfield = make_leadfield(atlas, montage, data_dir=args.data_dir)
    methods = [] if args.methods.strip().lower() == "none" else args.methods.split(",")
    conditions = args.conditions.split(",") if args.conditions else None
    res = run_benchmark(atlas, leadfield, out_dir=args.out, checkpoints=args.checkpoint,
                        bank=args.bank, train_sources=args.train_sources or None,
                        conditions=conditions, methods=methods, budget=args.budget,
                        n_samples=args.n_samples, seed=args.seed, train_seed=args.train_seed,
                        split=args.split, n_folds=args.n_folds, fold=args.fold,
                        data_dir=args.data_dir, figures=not args.no_figures,
                        device=args.device, progress=not args.no_progress)
    for name, why in res["skipped"].items():
        print(f"skipped {name}: {why}")
    print(f"done in {res['timings']['total']:.0f} s; tables: {res['summary_md']}"
          + (f"; report: {res['report']}" if "report" in res else ""))


# ------------------------------------------------------------------------------ models
def _models_args(p):
    p.add_argument("name", nargs="?", default=None,
                   help="print this model's card (JSON); without a name, list the models")


@command("models", "list the named models (usable as --checkpoint NAME) or print a model card")(
    _models_args)
def _models(args):
    from .inference import list_models, model_card, models_dir

    if args.name is not None:
        print(json.dumps(model_card(args.name), indent=2))
        return
    names = list_models()
    if not names:
        print(f"no models in {models_dir()} (set $LIGHTBUNNY_MODELS_DIR to another folder)")
    for name in names:
        card = model_card(name)
        print(f"{name}: {card['atlas']}, {card['n_chans']} channels ({card['montage']}); "
              f"{card['description']}")
