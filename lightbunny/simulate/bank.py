"""Simulate source regions in batches, extract their spike clips and write the spike bank."""

from __future__ import annotations

import time

import numpy as np

from .._logging import logger
from ..utils import check_option, exclusive_lock, usable_cores, versions
from .config import JansenRitConfig
from .nodes import simulate_nodes


def parse_regions(spec, n_regions: int) -> np.ndarray:
    """Regions from ``"START:END"`` (END excluded, either side may be empty), ``"3,7,9"``, an int
    or a sequence.

    Examples
    --------
    >>> parse_regions("2:5", 10).tolist(), parse_regions(":", 3).tolist(), parse_regions("1,4", 9).tolist()
    ([2, 3, 4], [0, 1, 2], [1, 4])
    """
    if spec is None:
        regions = np.arange(n_regions)
    elif isinstance(spec, str) and ":" in spec:
        start, _, end = spec.partition(":")
        start = int(start) if start.strip() else 0
        end = int(end) if end.strip() else n_regions
        regions = np.arange(start, end)
    elif isinstance(spec, str):
        regions = np.array([int(s) for s in spec.split(",") if s.strip()], dtype=np.int64)
    else:
        regions = np.atleast_1d(np.asarray(spec, dtype=np.int64))
    if len(regions) == 0:
        raise ValueError(f"regions {spec!r} select no region (the atlas has {n_regions}).")
    if regions.min() < 0 or regions.max() >= n_regions:
        raise ValueError(f"regions {spec!r} out of range: the atlas has regions 0..{n_regions - 1}.")
    return regions.astype(np.int64)


def _simulate_traces(weights, tract_lengths, region_to_node, chunk, *, backend, duration,
                     config, seed, device, dtype, progress=None, n_threads=None):
    """Simulate one chunk of source regions: (len(chunk), n_times, n_regions) float32, mV."""
    region_to_node = np.asarray(region_to_node)
    if progress is not None and backend == "torch":  # report region-steps: a batch step is
        report = progress                             # len(chunk) of them

        def progress(k):
            report(k * len(chunk))
    traces = simulate_nodes(weights, tract_lengths, region_to_node[chunk], backend=backend,
                            duration=duration, config=config, seed=seed, stream_ids=chunk,
                            device=device, dtype=dtype, progress=progress,
                            **({"n_threads": n_threads} if n_threads is not None else {}))
    return traces[:, :, region_to_node]


def _extract_chunk(traces, chunk, gain):
    """Clips of each region of a simulated chunk: ``[(region, clips, spike_times, n_spikes, alpha)]``."""
    from ..spikes import extract_clips

    results = []
    for b, region in enumerate(chunk):
        res = extract_clips(traces[b], int(region), gain)
        results.append((int(region), res["clips"], res["spike_times"], res["n_spikes"],
                        res["alpha"]))
    return results


def _simulate_chunk(weights, tract_lengths, region_to_node, gain, chunk, **kw):
    """Simulate a chunk and extract its clips (what a Dask worker runs)."""
    traces = _simulate_traces(weights, tract_lengths, region_to_node, chunk, **kw)
    return _extract_chunk(traces, chunk, gain)


def simulate_bank(atlas, out, *, regions=None, duration: float = 20.0, backend: str = "torch",
                  device: str = "cpu", dtype: str = "float32", batch_size: int = 32,
                  seed: int = 0, gain: np.ndarray | None = None,
                  config: JansenRitConfig | None = None, scheduler: str | None = None,
                  storage_dtype: str = "float16", progress: bool = True,
                  target_snr_db: float = 15.0, threads: int | None = None):
    """Simulate source regions, extract their clean spike clips and write a spike bank.

    Regions are processed in fixed chunks of ``batch_size`` consecutive requested regions (a
    chunk is one batch of the torch backend). A chunk whose regions are all in the bank already
    is skipped, so re-running the same command resumes a killed run; a chunk with some regions
    missing is simulated again whole and only the missing regions are written, so each region
    is simulated in the same batch as in an uninterrupted run (same seed, regions and
    ``batch_size`` -> the same bank, bit for bit on CPU).

    Parameters
    ----------
    atlas : Atlas
    out : path-like
        Bank file (``.h5``); its region files go to ``<out>.d/``.
    regions : str or sequence of int, optional
        ``"START:END"`` (END excluded) or indices; default all regions.
    duration : float, s
        Simulated length per region after the 0.5 s transient (20 s by default).
    backend : {"torch", "tvb"}
    device : str
        ``"cpu"`` or ``"cuda"`` (torch backend).
    dtype : {"float32", "float64"}
    batch_size : int
        Source regions simulated together.
    seed : int
        Each region's noise and initial history derive from ``(seed, region)``.
    gain : ndarray, shape (n_chans, n_regions), optional
        Leadfield for the 15 dB SNR scaling (None: clips are not scaled; recorded in attrs).
    config : JansenRitConfig, optional
    scheduler : str, optional
        Address of a Dask distributed scheduler (``"tcp://host:8786"``), or ``"local"`` for a
        local cluster; chunks run on its workers and this process writes the bank.
    storage_dtype : {"float16", "float32"}
    progress : bool
        Show a tqdm progress bar (region-steps of simulation, with ETA).
    target_snr_db : float, dB
    threads : int, optional
        torch CPU threads of the simulation (torch backend); default: one per batch when the
        batch is small, torch's setting otherwise.

    While it runs, the bank is locked (``<out>.lock``): a second ``simulate_bank`` on the same
    ``out`` stops at once with :class:`lightbunny.utils.LockedError` instead of mixing its
    regions into the index.

    Returns
    -------
    bank : SpikeBank
        The bank, opened for reading.
    """
    check_option("backend", backend, ("torch", "tvb"))
    if backend == "torch":
        from ..utils import resolve_device

        device = str(resolve_device(device))
    cfg = config or JansenRitConfig()
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    regions = parse_regions(regions, atlas.n_regions)
    if gain is not None:
        gain = np.asarray(gain, dtype=np.float64)
        if gain.ndim != 2 or gain.shape[1] != atlas.n_regions:
            raise ValueError(f"gain must have shape (n_chans, {atlas.n_regions}), got {gain.shape}.")
    n_steps, _ = cfg.n_steps(duration)
    attrs = {
        "config": cfg.to_dict(),
        "coupling_strength_used": cfg.coupling_strength(atlas.weights),
        "seed": int(seed), "duration": float(duration), "backend": backend,
        "dtype": dtype, "device": str(device), "batch_size": int(batch_size),
        "target_snr_db": float(target_snr_db) if gain is not None else None,
        "gain_shape": list(gain.shape) if gain is not None else None,
        "region_to_node": np.asarray(atlas.region_to_node).tolist(),
        "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "units": {"clips": "mV", "sfreq": "Hz", "duration": "s", "spike_times": "samples"},
    }
    lock = exclusive_lock(f"{out}.lock", what=f"the spike bank {out}")
    with lock:
        return _simulate_locked(atlas, out, regions, duration, backend, device, dtype, batch_size,
                                seed, gain, cfg, scheduler, storage_dtype, progress, attrs,
                                n_steps, threads)


def _simulate_locked(atlas, out, regions, duration, backend, device, dtype, batch_size, seed, gain,
                     cfg, scheduler, storage_dtype, progress, attrs, n_steps, threads):
    """The body of :func:`simulate_bank`, run while the bank's lock is held."""
    from ..spikes import SpikeBank, SpikeBankWriter

    writer = SpikeBankWriter(out, atlas_name=atlas.name, sfreq=cfg.sfreq, n_times=500,
                             n_regions=atlas.n_regions, attrs=attrs, storage_dtype=storage_dtype)
    done = writer.complete_regions()
    chunks = [regions[i:i + batch_size] for i in range(0, len(regions), int(batch_size))]
    todo = [c for c in chunks if not set(c.tolist()) <= done]
    logger.info("%d regions requested, %d already in %s; %d chunks of up to %d to simulate",
                len(regions), len(set(regions.tolist()) & done), out, len(todo), batch_size)

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(c) for c in todo) * n_steps, unit="region-step",
                   unit_scale=True, desc=f"simulate {backend}", smoothing=0.05)

    def write(results):
        for region, clips, spike_times, n_spikes, alpha in results:
            if region in done:
                continue
            writer.write_region(region, clips, spike_times, n_spikes=n_spikes, alpha=alpha)
            done.add(region)
        if bar is not None:
            bar.set_postfix(regions=f"{len(set(regions.tolist()) & done)}/{len(regions)}")

    kw = dict(backend=backend, duration=duration, config=cfg, seed=seed, device=device,
              dtype=dtype)
    if threads is not None and backend == "torch":
        kw["n_threads"] = int(threads)
    # threads for extraction + compression: leave a core to the simulation
    post_workers = max(1, min(8, usable_cores() - 1))
    w, tl, r2n = np.asarray(atlas.weights), np.asarray(atlas.tract_lengths), np.asarray(atlas.region_to_node)
    try:
        if scheduler is None:
            # extraction and writing of chunk k (numpy, zlib: they release the GIL) run in
            # background threads, one job per region, while chunk k + 1 is simulated
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=post_workers) as pool:
                pending = []
                for chunk in todo:
                    traces = _simulate_traces(w, tl, r2n, chunk,
                                              progress=bar.update if bar else None, **kw)
                    for fut in pending:  # at most one chunk waits: bounds memory
                        fut.result()
                    pending = [pool.submit(lambda t, c: write(_extract_chunk(t, c, gain)),
                                           traces[b:b + 1], chunk[b:b + 1])
                               for b in range(len(chunk))]
                for fut in pending:
                    fut.result()
        else:
            _run_dask(scheduler, todo, (w, tl, r2n, gain), kw, write, bar, n_steps)
    finally:
        if bar is not None:
            bar.close()
    return SpikeBank.open(out)


def _run_dask(scheduler, todo, arrays, kw, write, bar, n_steps):
    """Run the chunks on a Dask distributed cluster; results come back here to be written."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError("--scheduler needs dask.distributed: pip install 'lightbunny[dask]'") from err

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        w, tl, r2n, gain = (client.scatter(a, broadcast=True) if a is not None else None
                            for a in arrays)
        futures = [client.submit(_simulate_chunk, w, tl, r2n, gain, chunk, pure=False, **kw)
                   for chunk in todo]
        for fut in as_completed(futures):
            results = fut.result()
            write(results)
            if bar is not None:
                bar.update(n_steps * len(results))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
