"""Data commands of the command line: atlas, leadfield, fetch, sources, simulate."""

from __future__ import annotations

import json

from .cli_common import _add_data_dir, _add_device, _add_threads, _montage_arg, command


# ------------------------------------------------------------------------------ atlas
def _atlas_args(p):
    p.add_argument("name", help="atlas name: tvb76 (embedded default) or fsaverage994")
    _add_data_dir(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


@command("atlas", "summary of an atlas: regions, vertices, connectome, montages")(_atlas_args)
def _atlas(args):
    from .atlas import load_atlas
    from .leadfield import atlas_channel_summary

    atlas = load_atlas(args.name, data_dir=args.data_dir)
    summary = atlas.summary()
    summary["channels"] = atlas_channel_summary(atlas)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"Atlas {summary['name']}: {summary['n_regions']} regions, {summary['n_vertices']} "
          f"vertices, {summary['n_triangles']} triangles, {summary['n_nodes']} simulation nodes")
    for key in ("vertices_per_region", "neighbours_per_region", "region_distance_mm",
                "connectivity_row_sum"):
        print(f"  {key.replace('_', ' ')}: {summary[key]}")
    print(f"  cortex extent (mm, RAS): {summary['extent_mm']}")
    print(f"  source: {summary['source']}")
    ch = summary["channels"]
    print(f"  head model: {ch['head']}")
    print(f"  channels available: any mne standard montage ({', '.join(ch['montages'][:6])}, ...); "
          f"default {ch['default_montage']} ({ch['default_n_chans']} channels)")


# ------------------------------------------------------------------------------ leadfield
def _leadfield_args(p):
    p.add_argument("--atlas", default="tvb76", help="atlas name (default tvb76)")
    _add_data_dir(p)
    p.add_argument("--montage", default="standard_1020_64",
                   help="mne standard montage name, 'standard_1020_64' (default, 64 channels of "
                        "the 10-10 system), or a comma-separated list of channel names")
    p.add_argument("--orientation", default="normal", choices=("normal", "free_sum"),
                   help="dipoles along the cortical normal (default) or the seed's x+y+z sum")
    p.add_argument("--head-model", default=None, choices=("bem", "sphere", "deepsif"),
                   help="bem: 3-layer fsaverage BEM (default on fsaverage994); sphere: 4-shell "
                        "sphere fitted to the scalp (default on tvb76); deepsif: DeepSIF's "
                        "published leadfield (montage deepsif75 only)")
    p.add_argument("--forward", default=None, metavar="FWD.fif",
                   help="your own mne.Forward (-fwd.fif, EEG, surface source space on fsaverage "
                        "or, with --subjects-dir, on any FreeSurfer subject): its dipoles are "
                        "mapped to atlas regions; --montage and --head-model are then ignored")
    p.add_argument("--subjects-dir", default=None,
                   help="FreeSurfer subjects folder for a --forward on an individual subject")
    p.add_argument("--skull-conductivity", type=float, default=None,
                   help="skull conductivity in S/m (default 0.006 BEM, 0.004 sphere)")
    p.add_argument("--jitter-mm", type=float, default=0.0,
                   help="move electrodes along the scalp by this RMS distance (mismatch studies)")
    p.add_argument("--jitter-seed", type=int, default=0, help="seed of --jitter-mm")
    p.add_argument("--out", default=None, help="write the leadfield to this .h5 file")


@command("leadfield", "compute (or load from cache) a region leadfield for a montage")(
    _leadfield_args)
def _leadfield(args):
    from .atlas import load_atlas
    from .leadfield import make_leadfield

    atlas = load_atlas(args.atlas, data_dir=args.data_dir)
    montage = _montage_arg(args.montage)
    if args.forward:
        lf = make_leadfield(atlas, orientation=args.orientation, forward=args.forward,
                            subjects_dir=args.subjects_dir)
    else:
        lf = make_leadfield(atlas, montage, orientation=args.orientation,
                            head_model=args.head_model, data_dir=args.data_dir,
                            skull_conductivity=args.skull_conductivity,
                            jitter_mm=args.jitter_mm, jitter_seed=args.jitter_seed)
    if args.out:
        lf.save(args.out)
        print(f"wrote {args.out}")
    gain = lf.gain
    print(f"Leadfield {atlas.name} x {lf.montage}: {gain.shape[0]} channels x {gain.shape[1]} "
          f"regions, head model {lf.head_model}, orientation {lf.orientation}")
    print(f"  channels: {', '.join(lf.ch_names)}")
    col = abs(gain).max(0)
    print(f"  column max |gain| (V per A*m): min {col.min():.3g}, median "
          f"{float(sorted(col)[len(col) // 2]):.3g}, max {col.max():.3g}")


# ------------------------------------------------------------------------------ fetch
def _fetch_args(p):
    _add_data_dir(p)
    p.add_argument("--url", default=None,
                   help="URL template with {commit} and {path} (default: the pinned DeepSIF "
                        "commits on GitHub; a file:// template copies from a local mirror)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


@command("fetch", "download the fsaverage994 anatomy files (pinned DeepSIF commit, sha256 "
                  "checked)")(_fetch_args)
def _fetch(args):
    from .atlas import DEEPSIF_URL, fetch_fsaverage994

    root = fetch_fsaverage994(args.data_dir, url_template=args.url or DEEPSIF_URL,
                              progress=not args.no_progress)
    print(f"fsaverage994 files ready in {root}")


# ------------------------------------------------------------------------------ sources
def _sources_args(p):
    p.add_argument("--atlas", default="tvb76", help="atlas name (default tvb76)")
    _add_data_dir(p)
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="which split (test and val draw spike clips disjoint from train's)")
    p.add_argument("--n-iter", type=int, default=None,
                   help="variations per centre region (default: 48 for train, 3 otherwise)")
    p.add_argument("--n-sources", type=int, default=2, help="sources per sample (default 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--half-distance", type=float, nargs="+", default=[40.0, 60.0],
                   metavar="MM", help="half-magnitude distance h in mm: a value or a LOW HIGH "
                                      "range drawn per sample (default 40 60)")
    p.add_argument("--half-distance-per", default="sample", choices=("sample", "dataset"),
                   help="draw h per sample (default) or once per dataset (the seed)")
    p.add_argument("--n-variants", type=int, default=5,
                   help="variants per growth direction (default 5)")
    p.add_argument("--out", required=True, help="sources file to write (.h5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


@command("sources", "grow synthetic source patches for one split and write the sources file")(
    _sources_args)
def _sources(args):
    from .atlas import load_atlas
    from .sources import make_sources

    atlas = load_atlas(args.atlas, data_dir=args.data_dir)
    sources = make_sources(atlas, split=args.split, n_iter=args.n_iter, n_sources=args.n_sources,
                           seed=args.seed, half_distance=args.half_distance,
                           half_distance_per=args.half_distance_per, n_variants=args.n_variants,
                           progress=not args.no_progress)
    sources.save(args.out)
    s = sources.summary()
    print(f"wrote {args.out}: {s['n_samples']} samples x {s['n_sources']} sources, atlas "
          f"{s['atlas_name']}, split {s['split']}, patch size {s['patch_size']}")


# ------------------------------------------------------------------------------ simulate
def _simulate_args(p):
    p.add_argument("--atlas", default="tvb76", help="atlas name (default tvb76)")
    _add_data_dir(p)
    p.add_argument("--regions", default=None,
                   help="source regions START:END (END excluded) or a comma list (default all)")
    p.add_argument("--duration", type=float, default=20.0,
                   help="seconds simulated per region after the 0.5 s transient (default 20)")
    p.add_argument("--backend", default="torch", choices=("torch", "tvb"),
                   help="simulator: the batched torch Jansen-Rit or TVB itself (the tvb extra)")
    _add_device(p, "cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="floating-point precision of the simulation")
    p.add_argument("--batch-size", type=int, default=32,
                   help="regions simulated together (default 32; on a GPU try 256 or more)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulation")
    p.add_argument("--montage", default="standard_1020_64",
                   help="montage of the leadfield used for the 15 dB SNR scaling")
    p.add_argument("--no-scaling", action="store_true", help="keep the spikes unscaled")
    p.add_argument("--no-coupling-fix", action="store_true",
                   help="do not normalise the coupling to connectivity_998's row sums (the seed)")
    p.add_argument("--scheduler", default=None,
                   help="Dask scheduler address (tcp://host:8786) or 'local' to distribute chunks")
    _add_threads(p)
    p.add_argument("--consolidate", action="store_true",
                   help="at the end, merge the per-region files of OUT.d/ into OUT (one file)")
    p.add_argument("--out", required=True, help="spike bank file (.h5); re-run to resume")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


@command("simulate", "simulate Jansen-Rit source regions and write the spike bank")(_simulate_args)
def _simulate(args):
    from .atlas import load_atlas
    from .simulate import JansenRitConfig, simulate_bank
    from .utils import register_job, set_threads

    register_job()
    set_threads(args.threads)
    atlas = load_atlas(args.atlas, data_dir=args.data_dir)
    gain = None
    if not args.no_scaling:
        from .leadfield import make_leadfield

        gain = make_leadfield(atlas, _montage_arg(args.montage), data_dir=args.data_dir).gain
    config = JansenRitConfig(reference_row_sum=None) if args.no_coupling_fix else JansenRitConfig()
    bank = simulate_bank(atlas, args.out, regions=args.regions, duration=args.duration,
                         backend=args.backend, device=args.device, dtype=args.dtype,
                         batch_size=args.batch_size, seed=args.seed, gain=gain, config=config,
                         scheduler=args.scheduler, threads=args.threads,
                         progress=not args.no_progress)
    if args.consolidate:
        from .spikes import SpikeBank, consolidate_bank

        bank.close()
        bank = SpikeBank.open(consolidate_bank(args.out))
    s = bank.summary()
    print(f"wrote {args.out}: {s['n_clips_total']} clips from {s['n_regions_simulated']} regions "
          f"({bank.atlas_name}, {bank.sfreq:g} Hz, {bank.n_times} samples per clip)")
    counts = list(s["clips_per_region"].values())
    if counts:
        print(f"  clips per region: min {min(counts)}, median {sorted(counts)[len(counts) // 2]}, "
              f"max {max(counts)}")
    none = s["regions_without_clips"]
    print(f"  regions without clips ({len(none)}): {', '.join(map(str, none)) or 'none'}")
