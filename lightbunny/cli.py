"""The ``lightbunny`` command line. Each subcommand parses options and calls one public function.

Subcommands register themselves in ``COMMANDS`` (name -> (help, add_arguments, run); see
:mod:`lightbunny.cli_common`); only commands that work are registered, so ``lightbunny --help``
lists exactly what can be run. The commands are defined in :mod:`lightbunny.cli_data` and
:mod:`lightbunny.cli_models`, imported here in the order ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import cli_data, cli_models  # noqa: F401 (importing them registers their commands)
from .cli_common import COMMANDS, HelpFormatter, command  # noqa: F401 (public names of cli)


# ------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="lightbunny",
                                     description="Deep-learning EEG source imaging.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"lightbunny {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full traceback instead of one message")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, add_arguments, _) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_, formatter_class=HelpFormatter)
        add_arguments(sp)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="on an error, show the full traceback instead of one message")
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (which notebooks and tests replace)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            datefmt="%Y-%m-%d %H:%M:%S"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # set by StreamHandler.__init__; the property always wins
        pass


_HANDLER = _StderrHandler()


def _setup_logging(verbose: bool) -> None:
    """Attach the CLI's one log handler (once per process, however often ``main`` runs)."""
    pkg_logger = logging.getLogger("lightbunny")
    if _HANDLER not in pkg_logger.handlers:
        pkg_logger.addHandler(_HANDLER)
    pkg_logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def error_message(err: BaseException) -> str:
    """One line for the user: what went wrong and with which value, without a traceback."""
    import errno

    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    if isinstance(err, OSError) and err.strerror and getattr(err, "filename", None):
        hint = {errno.ENOSPC: " (the disk is full: free space or choose another --out)",
                errno.EACCES: " (choose a folder you can write to)",
                errno.EROFS: " (read-only file system: choose another --out)"}.get(err.errno, "")
        return f"{err.strerror}: {err.filename}{hint}"
    if isinstance(err, (ValueError, OSError, RuntimeError)) and str(err):
        return str(err)
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 success, 1 error, 2 usage, 130 ^C).

    Every error ends in one message on stderr (``lightbunny CMD: error: ...``) and a non-zero
    status; ``--debug`` shows the traceback instead.
    """
    from .utils import LockedError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2) and --help/--version (0)
        return int(exc.code or 0)
    _setup_logging(args.verbose)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"lightbunny {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI's one place that turns errors into messages
        if args.debug:
            raise
        print(f"lightbunny {args.command}: error: {error_message(err)}", file=sys.stderr)
        if not isinstance(err, (ValueError, OSError, KeyError, LockedError, FloatingPointError)):
            print("(an unexpected error: `lightbunny --debug ...` shows the traceback)",
                  file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
