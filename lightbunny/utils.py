"""Small shared building blocks: atomic writes, read-only arrays, option checks."""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Iterable

import numpy as np

#: Old 10-20 names and their 10-10 equivalents (shared by the leadfield montages and the channel
#: matching of recordings, :mod:`lightbunny.io`, which need nothing else from each other).
OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}


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


def write_csv(path: str | os.PathLike, rows: list) -> Path:
    """Write a list of dicts as CSV (columns: every key, in first-seen order), atomically."""
    import csv

    path = Path(path)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's contents, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


# ------------------------------------------------------------------------------------ devices
def check_device(device: str) -> str:
    """Check a device name: ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'``; return it.

    Whether the GPU exists is checked later, by :func:`resolve_device`.

    Examples
    --------
    >>> check_device("cuda:1")
    'cuda:1'
    >>> check_device("tpu9")
    Traceback (most recent call last):
    ...
    ValueError: Invalid device 'tpu9'. Allowed: 'auto', 'cpu', 'cuda', 'cuda:N' (N = 0, 1, ...).
    """
    text = str(device).strip().lower()
    if text in ("auto", "cpu", "cuda"):
        return text
    head, _, index = text.partition(":")
    if head == "cuda" and index.isdigit():
        return f"cuda:{int(index)}"
    raise ValueError(f"Invalid device {device!r}. Allowed: 'auto', 'cpu', 'cuda', "
                     f"'cuda:N' (N = 0, 1, ...).")


def resolve_device(device="auto"):
    """A :class:`torch.device` from a name checked by :func:`check_device`.

    ``'auto'`` is CUDA when torch finds a GPU, else the CPU; ``'cuda'`` or ``'cuda:N'`` without
    that GPU is a ValueError naming the GPUs torch sees.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    name = check_device(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.partition(":")[2] or 0)
        if index >= n:
            seen = f"{n} GPU(s): cuda:0..cuda:{n - 1}" if n else "no CUDA GPU"
            raise ValueError(f"device {device!r} was requested but torch finds {seen}; "
                             "use 'cpu' or 'auto'.")
    return torch.device(name)


# ------------------------------------------------------------------------------ CPU threads
def _cgroup_cpu_limit(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota/period``), or None."""
    root = Path(root)
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        if text:
            return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def usable_cores() -> int:
    """CPU cores this process may use: its affinity mask, capped by the cgroup CPU quota.

    Examples
    --------
    >>> usable_cores() >= 1
    True
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_limit()
    if quota is not None:
        n = min(n, max(1, int(quota)))  # a fractional quota rounds down (1.5 CPUs: 1 thread)
    return max(1, n)


def default_threads(n_workers: int = 1, cores: int | None = None,
                    busy: float = 0.0) -> int:
    """Intra-op threads per process when the user gives none.

    One thread per process when several workers share the machine (``n_workers > 1``: DDP
    ranks, simulation workers, other LightBunny jobs); otherwise the usable cores that other
    processes leave free (``busy``: their load, in cores), at least one. Never more threads
    than cores: an oversubscribed torch (OpenMP) thread pool waits on descheduled threads at
    every parallel region, which costs far more than the threads gain.

    Examples
    --------
    >>> default_threads(1, cores=8), default_threads(2, cores=8), default_threads(3, cores=2)
    (8, 1, 1)
    >>> default_threads(1, cores=8, busy=2.6), default_threads(1, cores=2, busy=1.8)
    (5, 1)
    """
    cores = usable_cores() if cores is None else int(cores)
    if n_workers > 1:
        return 1
    return max(1, min(cores, int(math.floor(cores - busy + 0.5))))


def machine_load() -> float:
    """Runnable processes averaged over the last minute (``os.getloadavg()[0]``), 0 if unknown."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return 0.0


class ThreadPolicy:
    """Re-apply :func:`set_threads` now and then during long work (call :meth:`update` often).

    A job that started alone uses the cores other processes leave free; when a second
    LightBunny job starts on the same machine, the first drops to one thread at its next update
    (and goes back when the other ends).
    Runs in the calling thread: torch's intra-op thread count is per thread.

    Parameters
    ----------
    threads : int, optional
        A fixed count (``--threads``): then nothing changes after the first update.
    interval : float, s
        Least time between two checks of the other jobs.
    """

    def __init__(self, threads: int | None = None, interval: float = 5.0):
        self.threads, self.interval = threads, float(interval)
        self.current, self._last, self._busy = None, -math.inf, None

    def update(self) -> int:
        """Apply the policy if ``interval`` has passed since the last check; return the count.

        The load of other processes is read once, at the first update (later, this job's own
        threads are part of the load); the other LightBunny jobs are counted at every check.
        """
        now = time.monotonic()
        if self.current is not None and (self.threads is not None
                                         or now - self._last < self.interval):
            return self.current
        self._last = now
        import torch

        if self._busy is None:
            self._busy = machine_load()
        wanted = self.threads if self.threads is not None else default_threads(
            int(os.environ.get("LOCAL_WORLD_SIZE", "1")) + running_jobs() - 1,
            busy=self._busy)
        if wanted != self.current:
            if self.current is not None:
                from ._logging import logger

                logger.info("torch CPU threads: %d -> %d (%d LightBunny job(s) running)",
                            self.current, wanted, running_jobs())
            if wanted != torch.get_num_threads():
                torch.set_num_threads(wanted)
            self.current = wanted
        return self.current


def set_threads(threads: int | None = None, *, n_workers: int | None = None) -> int:
    """Apply the CPU thread policy to torch (intra-op threads) and return the count used.

    Parameters
    ----------
    threads : int, optional
        Use exactly this many (``--threads``); a warning is logged when it exceeds the usable
        cores.
    n_workers : int, optional
        Processes working at once on this machine; default: the torchrun local world size
        (``LOCAL_WORLD_SIZE``) plus the other live LightBunny jobs (see :func:`running_jobs`).
        Alone, the job takes the cores the machine's load (:func:`machine_load`) leaves free.
    """
    import torch

    from ._logging import logger

    cores = usable_cores()
    if threads is not None:
        threads = int(threads)
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}.")
        if threads > cores:
            logger.warning("--threads %d exceeds the %d usable core(s); the threads will "
                           "compete for them.", threads, cores)
    else:
        if n_workers is None:
            n_workers = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) + running_jobs() - 1
        threads = default_threads(n_workers, cores, busy=machine_load())
    torch.set_num_threads(threads)
    logger.debug("torch intra-op threads: %d (%d usable core(s))", threads, cores)
    return threads


def _jobs_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"lightbunny-jobs-{os.getuid()}"


def _start_time(pid: int) -> str:
    """Start time of a process (clock ticks since boot, Linux), or '' where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return ""


def register_job() -> None:
    """Mark this process as a running LightBunny job (for :func:`running_jobs`); the mark is a
    file named by the process id holding its start time (so a reused id is not counted),
    removed at exit."""
    import atexit

    d = _jobs_dir()
    with contextlib.suppress(OSError):
        d.mkdir(exist_ok=True)
        mark = d / str(os.getpid())
        mark.write_text(_start_time(os.getpid()))
        atexit.register(lambda: mark.unlink(missing_ok=True))


def running_jobs() -> int:
    """Live LightBunny jobs of this user on this machine, this one included (at least 1)."""
    n = 0
    with contextlib.suppress(OSError):
        for mark in _jobs_dir().iterdir():
            if not mark.name.isdigit():
                continue
            pid = int(mark.name)
            try:
                os.kill(pid, 0)
                started = mark.read_text().strip()
                if started and started != _start_time(pid):  # the id now names another process
                    raise ProcessLookupError
            except ProcessLookupError:
                mark.unlink(missing_ok=True)
                continue
            except (PermissionError, FileNotFoundError):
                pass
            n += pid != os.getpid()
    return n + 1


class LockedError(RuntimeError):
    """Another process holds the lock of an output (see :func:`exclusive_lock`)."""


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str = "this output"):
    """Hold an exclusive, non-blocking lock on ``path`` (created if needed) while the block runs.

    A second writer gets a :class:`LockedError` at once instead of interleaving its writes with
    the first's. The lock is an ``flock`` on an open file, so the kernel releases it when the
    process ends, even if it is killed.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"another process is writing {what} (lock {path} is held); wait "
                              "for it to finish or choose another --out.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)


def open_h5(path: str | os.PathLike, what: str = "file"):
    """Open an HDF5 file for reading; an unreadable one is a ValueError naming it.

    h5py's own message for a truncated or corrupt file does not say which file it was.
    """
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{what} {path} cannot be read: it is not a complete HDF5 file "
                         f"(truncated or corrupt? {err})") from None


# ------------------------------------------------------------------------------ HDF5 files
#: The attributes of every self-describing HDF5 file the package writes (leadfield, sources,
#: spike bank, imaging result): ``format`` (a name such as ``'lightbunny-sources'``),
#: ``format_version`` (an integer) and ``meta`` (JSON text of a plain dict describing the
#: file); the data are plain numeric datasets.
H5_FORMAT_ATTRS = ("format", "format_version", "meta")


def _json_or_str(obj):
    try:
        return _json_default(obj)
    except TypeError:
        return str(obj)


def write_h5_attrs(f, fmt: str, version: int, meta: dict) -> None:
    """Describe an open, writable HDF5 file ``f``: ``format``, ``format_version`` and ``meta``
    (``meta`` as JSON; numpy values become numbers and lists, other objects their ``str``).

    Examples
    --------
    >>> import h5py, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.h5"
    >>> with h5py.File(path, "w") as f:
    ...     write_h5_attrs(f, "lightbunny-example", 1, {"sfreq": np.float64(500.0), "ch": ["Cz"]})
    >>> with open_h5_format(path, "lightbunny-example", what="example file") as f:
    ...     read_h5_attrs(f)
    {'ch': ['Cz'], 'sfreq': 500.0}
    """
    f.attrs["format"] = fmt
    f.attrs["format_version"] = int(version)
    f.attrs["meta"] = json.dumps(meta, default=_json_or_str, sort_keys=True)


def _attr_value(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def read_h5_attrs(f, json_keys=()) -> dict:
    """The ``meta`` dict of a file written with :func:`write_h5_attrs`.

    A file written before that convention has no ``meta``: its attributes are returned as a
    dict instead (``format`` and ``format_version`` left out), numpy values as Python ones,
    and the values of ``json_keys``, and of every key ``K`` flagged by an attribute
    ``K__json``, decoded from JSON.
    """
    attrs = f.attrs
    if isinstance(_attr_value(attrs.get("meta")), str):
        return json.loads(_attr_value(attrs["meta"]))
    out = {}
    for key, value in attrs.items():
        if key in ("format", "format_version") or key.endswith("__json"):
            continue
        value = _attr_value(value)
        if key in json_keys or bool(attrs.get(f"{key}__json", False)):
            value = json.loads(value)
        out[key] = value
    return out


def open_h5_format(path: str | os.PathLike, expected_format: str, *, what: str = "file",
                   max_version: int | None = None, legacy=None):
    """Open one of the package's HDF5 files for reading, checking its ``format`` attribute.

    Parameters
    ----------
    path : path
    expected_format : str
        The ``format`` attribute the file must have.
    what : str
        What the file is, for messages (``'sources file'``).
    max_version : int, optional
        The newest ``format_version`` this code reads.
    legacy : callable, optional
        ``legacy(f) -> bool``: whether a file without a ``format`` attribute is an old file of
        this kind (written before its writer marked its files).

    Returns
    -------
    h5py.File
        Open for reading (use it as a context manager).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not a complete HDF5 file, another format, or a newer version; the message names the
        file, what was found and what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    f = open_h5(path, what)
    try:
        fmt = _attr_value(f.attrs.get("format", ""))
        if fmt != expected_format and not (not fmt and legacy is not None and legacy(f)):
            raise ValueError(f"{path} is not a {what} (format attribute {fmt!r}, expected "
                             f"{expected_format!r}).")
        version = int(_attr_value(f.attrs.get("format_version", 1)))
        if max_version is not None and version > max_version:
            raise ValueError(f"{path} is a {what} of format version {version}; this lightbunny "
                             f"reads up to version {max_version}. Upgrade lightbunny.")
    except BaseException:
        f.close()
        raise
    return f
