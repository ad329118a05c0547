"""Batched Jansen-Rit network integrator in PyTorch (CPU or CUDA).

A batch holds independent copies of the network, one per *source node* (the node whose
excitatory gain is raised to ``A_source``), integrated in lock step. The equations, the coupling,
the delays and the stochastic Heun scheme follow TVB (``JansenRit``, ``SigmoidalJansenRit``,
``HeunStochastic``) so that, without noise and from the same initial history, the trajectories
agree with TVB to rounding error (see ``tests/test_simulate.py``).

Implementation notes (written for this project):

* The coupling sigmoid only depends on the *sending* node, so it is evaluated once per node and
  step and stored in a circular history buffer ``sigma(t) = sigmoid(coupling_r (v(t) -
  midpoint))`` of shape (horizon * n_nodes, batch), instead of once per connection as TVB does.
* The delayed input of node i is ``a sum_j w_ij S_j(t - 1 - d_ij)``: one gather of the
  buffer rows of every connection (a precomputed index table per step residue) and one sparse
  CSR product with the weights, rows grouped by receiving node.
* The Jansen-Rit right-hand side is written as ``L y + F(y)`` (a 6 x 6 linear part plus three
  sigmoid terms), a handful of fused tensor operations per stage, in place where possible.
* Noise for batch element ``b`` comes from its own generator seeded from ``(seed, stream_id[b])``,
  so a region's trajectory does not depend on which other regions share its batch (up to
  rounding: vectorised kernels may round a batch column differently, which is why the bank
  always simulates a region in the same chunk). On CPU a run is bitwise reproducible; on CUDA
  the sparse product may sum in a different order from run to run.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._logging import logger
from ..utils import check_option
from .config import JansenRitConfig

#: TVB's JansenRit ``state_variable_range``, used (like TVB) to draw random initial histories.
STATE_RANGES = np.array([[-1.0, 1.0], [-500.0, 500.0], [-50.0, 50.0], [-6.0, 6.0],
                         [-20.0, 20.0], [-500.0, 500.0]])


def stream_seed(seed: int, stream_id: int, purpose: int = 0) -> int:
    """A 63-bit seed derived from ``(seed, stream_id, purpose)`` (numpy SeedSequence)."""
    state = np.random.SeedSequence([int(seed), int(stream_id) + 1, int(purpose)]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def random_initial_history(n_hist: int, n_nodes: int, seed: int, stream_id: int) -> np.ndarray:
    """Uniform random history inside TVB's state ranges, as TVB's ``Model.initial`` draws it.

    Returns
    -------
    history : ndarray, shape (n_hist, 6, n_nodes), float64
    """
    rng = np.random.default_rng(stream_seed(seed, stream_id, purpose=1))
    lo, hi = STATE_RANGES[:, 0], STATE_RANGES[:, 1]
    u = rng.uniform(size=(n_hist, 6, n_nodes))
    return lo[None, :, None] + (hi - lo)[None, :, None] * u


def _incoming_csr(weights: np.ndarray, delays: np.ndarray):
    """Non-zero connections sorted by receiving node.

    Returns ``crow`` (n_nodes + 1,), ``src`` (nnz,), ``dly`` (nnz,) int64 and ``w`` (nnz,)
    float64: the connections into node i are ``crow[i]:crow[i + 1]``.
    """
    rows, cols = np.nonzero(weights)  # row-major order: sorted by receiving node
    crow = np.r_[0, np.cumsum(np.bincount(rows, minlength=len(weights)))].astype(np.int64)
    return crow, cols.astype(np.int64), delays[rows, cols].astype(np.int64), weights[rows, cols]


def simulate_torch(weights: np.ndarray, tract_lengths: np.ndarray, source_nodes, *,
                   duration: float = 20.0, config: JansenRitConfig | None = None, seed: int = 0,
                   stream_ids=None, initial_history: np.ndarray | None = None,
                   device: str = "cpu", dtype: str = "float32", noise_block: int = 1000,
                   n_threads: int | None = None, progress=None) -> np.ndarray:
    """Simulate the network once per source node, all at once as a batch.

    Parameters
    ----------
    weights : ndarray, shape (n_nodes, n_nodes)
        Structural weights (a.u.); ``weights[i, j]`` is the connection from j to i (TVB).
    tract_lengths : ndarray, shape (n_nodes, n_nodes), mm
    source_nodes : sequence of int, length n_batch
        Node with ``A = A_source`` in each batch element (-1: none, every node at ``A``).
    duration : float, s
        Output length kept after the transient.
    config : JansenRitConfig, optional
    seed : int
    stream_ids : sequence of int, length n_batch, optional
        Key of each element's random stream (default ``source_nodes``); the bank passes region
        indices so that a region's output depends only on ``(seed, region)``.
    initial_history : ndarray, shape (n_hist, 6, n_nodes) or (n_batch, n_hist, 6, n_nodes), optional
        State history, oldest first; the last row is the state at step 0. Must cover the
        largest delay (``n_hist >= max delay + 1``). Default: uniform random in TVB's state
        ranges, drawn from ``(seed, stream_id)``.
    device : {"cpu", "cuda"} or str
    dtype : {"float32", "float64"}
    noise_block : int
        Steps of noise drawn at once per batch element.
    n_threads : int, optional
        torch CPU threads during the run (restored afterwards). Default: 1 when a step's
        tensors are small (n_nodes * n_batch < 65536), where more threads only wait on each
        other (badly so on a shared machine); otherwise torch's current setting.
    progress : callable, optional
        Called as ``progress(n_steps_done)`` every few hundred steps.

    Returns
    -------
    out : ndarray, shape (n_batch, n_out, n_nodes), float32 (float64 if ``dtype="float64"``), mV
        ``y1 - y2`` of every node at ``config.sfreq``: output sample k is the state after
        step ``transient_steps + 1 + k * decimation`` (the seed's ``data[1000::4]`` of TVB's
        raw monitor, whose first row is step 1).
    """
    import torch

    cfg = config or JansenRitConfig()
    check_option("dtype", dtype, ("float32", "float64"))
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    weights = np.asarray(weights, dtype=np.float64)
    tract_lengths = np.asarray(tract_lengths, dtype=np.float64)
    n = len(weights)
    if weights.shape != (n, n) or tract_lengths.shape != (n, n):
        raise ValueError(f"weights {weights.shape} and tract_lengths {tract_lengths.shape} must both "
                         "be square (n_nodes, n_nodes).")
    source_nodes = np.atleast_1d(np.asarray(source_nodes, dtype=np.int64))
    if source_nodes.ndim != 1 or len(source_nodes) == 0:
        raise ValueError("source_nodes must be a non-empty 1-D sequence of node indices.")
    if ((source_nodes < -1) | (source_nodes >= n)).any():
        raise ValueError(f"source_nodes must lie in -1..{n - 1}, got {source_nodes.tolist()}.")
    n_batch = len(source_nodes)
    stream_ids = source_nodes if stream_ids is None else np.asarray(stream_ids, dtype=np.int64)
    if stream_ids.shape != (n_batch,):
        raise ValueError(f"stream_ids must have length {n_batch}, got shape {stream_ids.shape}.")
    n_steps, n_out = cfg.n_steps(duration)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; "
                         "use device='cpu'.")

    delays = cfg.delays(tract_lengths)
    nz = weights != 0
    horizon = int(delays[nz].max()) + 1 if nz.any() else 1
    crow, src, dly, w = _incoming_csr(weights, delays)
    c_a = cfg.coupling_strength(weights)

    # ---------------------------------------------------------------- initial history
    if initial_history is None:
        hist = np.stack([random_initial_history(horizon, n, seed, s) for s in stream_ids])
    else:
        hist = np.asarray(initial_history, dtype=np.float64)
        if hist.ndim == 3:
            hist = np.broadcast_to(hist, (n_batch,) + hist.shape)
        if hist.ndim != 4 or hist.shape[0] != n_batch or hist.shape[2:] != (6, n):
            raise ValueError(f"initial_history must have shape (n_hist, 6, {n}) or "
                             f"({n_batch}, n_hist, 6, {n}), got {np.shape(initial_history)}.")
        if hist.shape[1] < horizon:
            raise ValueError(f"initial_history has {hist.shape[1]} steps but the largest delay "
                             f"needs {horizon} (max delay + 1).")
        hist = hist[:, -horizon:]

    # Layout: node first, batch last, so that gathering a delayed value for every connection
    # reads a contiguous run of n_batch numbers.
    def T(x):
        return torch.tensor(np.asarray(x), dtype=tdtype, device=dev)

    # The buffer holds sigma_j(t) = sigmoid(coupling_r (v_j(t) - midpoint)); the coupling is
    # c_i = a [cmin sum_j w_ij + (cmax - cmin) sum_j w_ij sigma_j(t - 1 - d_ij)], i.e. TVB's
    # SigmoidalJansenRit with the affine part folded into the weights.
    def coupling_arg(v):
        return (v - cfg.midpoint) * cfg.coupling_r

    # circular buffer: rows (step % horizon) * n + node hold sigma(v(step)) of every batch
    sbuf = torch.empty((horizon * n, n_batch), dtype=tdtype, device=dev)
    v_hist = T((hist[:, :, 1] - hist[:, :, 2]).transpose(1, 2, 0))  # (horizon, n, batch)
    for m in range(horizon):
        row = (-m) % horizon
        sbuf[row * n:(row + 1) * n] = torch.sigmoid(coupling_arg(v_hist[horizon - 1 - m]))
    Y = T(hist[:, -1].transpose(1, 2, 0)).contiguous()  # state (6, n, batch)

    # gather rows for every step residue: idx_table[step % horizon][k] is the buffer row of
    # sigma_src[k](step - 1 - dly[k]); (horizon, nnz) int64, 36 MB for connectivity_998
    steps = np.arange(horizon)[:, None]
    idx_table = torch.as_tensor(((steps - 1 - dly[None, :]) % horizon) * n + src[None, :],
                                device=dev)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        R = torch.sparse_csr_tensor(torch.as_tensor(crow, device=dev),
                                    torch.arange(len(src), device=dev),
                                    T(w * c_a * (cfg.cmax - cfg.cmin)), size=(n, len(src)))
    c_const = T((weights.sum(1) * c_a * cfg.cmin + cfg.mu)[:, None])  # (n, 1), + mu (see F4)

    A = np.full((n, n_batch), cfg.A)
    has_src = np.flatnonzero(source_nodes >= 0)
    A[source_nodes[has_src], has_src] = cfg.A_source
    Aa = T(A * cfg.a)
    a, b, dt = cfg.a, cfg.b, cfg.dt
    two_nu = 2.0 * cfg.nu_max
    # JR as dY = L Y + F(Y): L is the linear part, F the sigmoid terms of rows 3, 4, 5, whose
    # arguments are P Y + q (rows: r (y1 - y2 - v0), r (a1 J y0 - v0), r (a3 J y0 - v0)).
    L = np.zeros((6, 6))
    L[0, 3] = L[1, 4] = L[2, 5] = 1.0
    L[3, 3], L[3, 0] = -2 * a, -a * a
    L[4, 4], L[4, 1] = -2 * a, -a * a
    L[5, 5], L[5, 2] = -2 * b, -b * b
    P = np.zeros((3, 6))
    P[0, 1], P[0, 2] = cfg.r, -cfg.r
    P[1, 0] = cfg.r * cfg.a_1 * cfg.J
    P[2, 0] = cfg.r * cfg.a_3 * cfg.J
    L_t, P_t, q_t = T(L), T(P), T(np.full((3, 1), -cfg.r * cfg.v0))
    Aa2nu = Aa * two_nu
    k4 = cfg.a_2 * cfg.J * two_nu
    k5 = cfg.B * cfg.b * cfg.a_4 * cfg.J * two_nu
    nb = n * n_batch

    def dfun(Yk, c):
        flat = Yk.view(6, nb)
        s = torch.sigmoid(torch.addmm(q_t, P_t, flat)).view(3, n, n_batch)
        d = torch.mm(L_t, flat).view(6, n, n_batch)
        d[3].addcmul_(Aa2nu, s[0])
        d[4].addcmul_(Aa, torch.add(c, s[1], alpha=k4))  # c already holds mu
        d[5].add_(s[2], alpha=k5)
        return d

    gens = None
    noise_amp = math.sqrt(2.0 * cfg.nsig * dt)
    if cfg.noise:
        gens = [torch.Generator(device=dev).manual_seed(stream_seed(seed, s)) for s in stream_ids]
    noise_buf = None
    gathered = torch.empty((len(src), n_batch), dtype=tdtype, device=dev)

    out = torch.empty((n_out, n, n_batch), dtype=tdtype, device=dev)
    first = cfg.transient_steps + 1
    logger.debug("torch JR: batch %d, %d nodes, %d connections, %d steps, horizon %d, "
                 "coupling %.4g", n_batch, n, len(src), n_steps, horizon, c_a)
    threads_before = torch.get_num_threads()
    if dev.type == "cpu" and n_threads is None and n * n_batch < 65536:
        n_threads = 1
    if dev.type == "cpu" and n_threads:
        torch.set_num_threads(int(n_threads))
    try:
        with torch.no_grad():
            for step in range(1, n_steps + 1):
                # delayed coupling (+ mu): c_i = a sum_j w_ij S_j(step - 1 - d_ij) + mu
                torch.index_select(sbuf, 0, idx_table[step % horizon], out=gathered)
                c = (R @ gathered).add_(c_const)
                k1 = dfun(Y, c)
                inter = torch.add(Y, k1, alpha=dt)
                if gens is not None:
                    k = (step - 1) % noise_block
                    if k == 0:
                        blk = min(noise_block, n_steps - step + 1)
                        # each batch element draws from its own stream: (blk, n) per element
                        noise_buf = torch.stack([torch.randn((blk, n), generator=g, device=dev,
                                                             dtype=tdtype) for g in gens], -1)
                        noise_buf *= noise_amp
                    eta = noise_buf[k]
                    inter[4] += eta
                k1 += dfun(inter, c)
                Y.add_(k1, alpha=0.5 * dt)
                if gens is not None:
                    Y[4] += eta
                v = Y[1] - Y[2]
                row = step % horizon
                torch.sigmoid(coupling_arg(v), out=sbuf[row * n:(row + 1) * n])
                if step >= first and (step - first) % cfg.decimation == 0:
                    out[(step - first) // cfg.decimation] = v
                if progress is not None and step % 500 == 0:
                    progress(500)
            if progress is not None and n_steps % 500:
                progress(n_steps % 500)
    finally:
        if dev.type == "cpu" and n_threads:
            torch.set_num_threads(threads_before)
    result = out.permute(2, 0, 1).cpu().numpy()
    return result if dtype == "float64" else result.astype(np.float32, copy=False)
