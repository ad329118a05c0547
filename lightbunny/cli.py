"""The ``lightbunny`` command line. Each subcommand parses options and calls one public function.

Subcommands register themselves in ``COMMANDS`` (name -> (add_arguments, run)); only commands
that work are registered, so ``lightbunny --help`` lists exactly what can be run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

COMMANDS: dict = {}


def command(name: str, help: str):
    """Register ``add_arguments(parser)``; the decorated function runs the command."""

    def wrap(add_arguments):
        def deco(run):
            COMMANDS[name] = (help, add_arguments, run)
            return run

        return deco

    return wrap


def _add_data_dir(p):
    p.add_argument("--data-dir", default=None,
                   help="folder holding the fsaverage994 files (default: $LIGHTBUNNY_DATA, "
                        "then ~/.lightbunny/fsaverage994)")


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
    p.add_argument("--out", default=None, help="write the leadfield to this .h5 file")


@command("leadfield", "compute (or load from cache) a region leadfield for a montage")(_leadfield_args)
def _leadfield(args):
    from .atlas import load_atlas
    from .leadfield import make_leadfield

    atlas = load_atlas(args.atlas, data_dir=args.data_dir)
    montage = args.montage.split(",") if "," in args.montage else args.montage
    lf = make_leadfield(atlas, montage, orientation=args.orientation)
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


@command("fetch", "download the fsaverage994 anatomy files (pinned DeepSIF commit, sha256 checked)")(_fetch_args)
def _fetch(args):
    from .atlas import DEEPSIF_URL, fetch_fsaverage994

    root = fetch_fsaverage994(args.data_dir, url_template=args.url or DEEPSIF_URL)
    print(f"fsaverage994 files ready in {root}")


# ------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="lightbunny", description="Deep-learning EEG source imaging.")
    parser.add_argument("--version", action="version", version=f"lightbunny {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_, description=help_))
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    pkg_logger = logging.getLogger("lightbunny")
    pkg_logger.addHandler(handler)
    pkg_logger.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        COMMANDS[args.command][2](args)
    except (ValueError, FileNotFoundError, KeyError) as err:
        if args.verbose:
            raise
        print(f"lightbunny {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
