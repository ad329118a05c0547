"""Small shared building blocks: atomic writes, read-only arrays, option checks."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np


def check_option(name: str, value, allowed: Iterable) -> None:
    """Raise a ValueError naming ``value`` and the allowed options if it is not one of them.

    Examples
    --------
    >>> check_option("backend", "torch", ("torch", "tvb"))
    >>> check_option("backend", "jax", ("torch", "tvb"))
    Traceback (most recent call last):
    ...
    ValueError: Invalid backend 'jax'. Allowed: 'torch', 'tvb'.
    """
    allowed = list(allowed)
    if value in allowed:
        return
    msg = f"Invalid {name} {value!r}. Allowed: {', '.join(repr(a) for a in allowed)}."
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=3, cutoff=0.6)
    if close:
        msg += f" Did you mean {' or '.join(repr(c) for c in close)}?"
    raise ValueError(msg)


def read_only(array: np.ndarray) -> np.ndarray:
    """Return ``array`` (as an ndarray) with its writeable flag cleared.

    Cached arrays are handed out read-only so that an accidental in-place edit fails loudly
    instead of corrupting later samples.
    """
    array = np.asarray(array)
    array.flags.writeable = False
    return array


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success.

    An interrupted writer therefore never leaves a half-written file under the final name.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = pathlib.Path(tmp).write_text("done")
    >>> (d / "a.txt").read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file private (0600); give it the permissions of a normal new file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def versions() -> dict:
    """Versions of the packages that shape results, for self-describing outputs."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("lightbunny", "numpy", "scipy", "torch", "mne", "tvb-library", "tvb-data"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out
