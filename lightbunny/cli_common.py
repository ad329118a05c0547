"""Shared pieces of the command line: the command registry and argparse helpers.

Subcommands register themselves in ``COMMANDS`` (name -> (help, add_arguments, run)) with
:func:`command`; the commands live in :mod:`lightbunny.cli_data` (atlas, leadfield, fetch,
sources, simulate) and :mod:`lightbunny.cli_models` (train, apply, evaluate, run, quickstart,
benchmark), and :mod:`lightbunny.cli` builds the parser and runs them.
"""

from __future__ import annotations

import argparse

COMMANDS: dict = {}


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every option whose help does not already name its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or action.required or action.default is argparse.SUPPRESS
                or action.nargs == 0 or "default" in text.lower()):
            return text  # positionals, required options, flags, or a default already said
        default = action.default
        if default is None:
            shown = "none"
        elif isinstance(default, (list, tuple)):
            shown = " ".join(str(x) for x in default)
        else:
            shown = str(default)
        return f"{text} (default: {shown})" if text else f"default: {shown}"


def _amplitude_snr(text: str) -> float:
    """argparse type of apply's --snr: a finite amplitude ratio > 0 (nan/inf/0 refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite amplitude ratio > 0, got {text!r}")
    return value


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
                   help="folder holding the fsaverage994 files and extra montages such as "
                        "deepsif75 (default: $LIGHTBUNNY_DATA, then ~/.lightbunny/fsaverage994)")


def _device(text: str) -> str:
    """argparse type of ``--device``: auto, cpu, cuda or cuda:N (checked, not yet resolved)."""
    from .utils import check_device

    try:
        return check_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_device(p, default: str = "auto"):
    """``--device`` with one meaning everywhere: auto (CUDA if present), cpu, cuda or cuda:N."""
    p.add_argument("--device", default=default, type=_device,
                   help=f"torch device: auto (CUDA when available), cpu, cuda or cuda:N "
                        f"(default {default})")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_threads(p):
    """``--threads``: torch CPU threads of this process (default: the thread policy)."""
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="torch CPU threads (default: all usable cores, or 1 when other "
                        "LightBunny jobs or workers run on this machine)")


def _moved(new: str, why: str):
    """An argparse action for a flag that has another meaning elsewhere: refuse it, naming the
    flag to use."""

    class Moved(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(f"{option_string} is not an option of this command ({why}); use {new}.")

    return Moved


def _montage_arg(text):
    """A montage name, or a comma-separated list of channel names."""
    return text.split(",") if text and "," in text else text
