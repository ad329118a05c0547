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
    weights, tract_lengths, source_nodes, stream_ids = _check_network(
        weights, tract_lengths, source_nodes, stream_ids)
    n, n_batch = len(weights), len(source_nodes)
    n_steps, n_out = cfg.n_steps(duration)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; "
                         "use device='cpu'.")
    delays = cfg.delays(tract_lengths)
    nz = weights != 0
    horizon = int(delays[nz].max()) + 1 if nz.any() else 1
    hist = _history(initial_history, horizon, n, n_batch, seed, stream_ids)
    net = _JansenRitBatch(cfg, weights, delays, source_nodes, hist, tdtype, dev)
    noise = _Noise(cfg, seed, stream_ids, n, noise_block, n_steps, tdtype, dev)
    logger.debug("torch JR: batch %d, %d nodes, %d connections, %d steps, horizon %d, "
                 "coupling %.4g", n_batch, n, net.n_connections, n_steps, horizon, net.c_a)
    threads_before = torch.get_num_threads()
    if dev.type == "cpu" and n_threads is None and n * n_batch < 65536:
        n_threads = 1
    if dev.type == "cpu" and n_threads:
        torch.set_num_threads(int(n_threads))
    try:
        out = _integrate(net, noise, cfg, n_steps, n_out, progress)
    finally:
        if dev.type == "cpu" and n_threads:
            torch.set_num_threads(threads_before)
    result = out.permute(2, 0, 1).cpu().numpy()
    return result if dtype == "float64" else result.astype(np.float32, copy=False)


def _check_network(weights, tract_lengths, source_nodes, stream_ids):
    """The network's arrays as float64 / int64, checked for shape and range."""
    weights = np.asarray(weights, dtype=np.float64)
    tract_lengths = np.asarray(tract_lengths, dtype=np.float64)
    n = len(weights)
    if weights.shape != (n, n) or tract_lengths.shape != (n, n):
        raise ValueError(f"weights {weights.shape} and tract_lengths {tract_lengths.shape} must "
                         "both be square (n_nodes, n_nodes).")
    source_nodes = np.atleast_1d(np.asarray(source_nodes, dtype=np.int64))
    if source_nodes.ndim != 1 or len(source_nodes) == 0:
        raise ValueError("source_nodes must be a non-empty 1-D sequence of node indices.")
    if ((source_nodes < -1) | (source_nodes >= n)).any():
        raise ValueError(f"source_nodes must lie in -1..{n - 1}, got {source_nodes.tolist()}.")
    n_batch = len(source_nodes)
    stream_ids = source_nodes if stream_ids is None else np.asarray(stream_ids, dtype=np.int64)
    if stream_ids.shape != (n_batch,):
        raise ValueError(f"stream_ids must have length {n_batch}, got shape {stream_ids.shape}.")
    return weights, tract_lengths, source_nodes, stream_ids


def _history(initial_history, horizon: int, n: int, n_batch: int, seed: int, stream_ids):
    """The last ``horizon`` steps of the initial history, shape (n_batch, horizon, 6, n)."""
    if initial_history is None:
        return np.stack([random_initial_history(horizon, n, seed, s) for s in stream_ids])
    hist = np.asarray(initial_history, dtype=np.float64)
    if hist.ndim == 3:
        hist = np.broadcast_to(hist, (n_batch,) + hist.shape)
    if hist.ndim != 4 or hist.shape[0] != n_batch or hist.shape[2:] != (6, n):
        raise ValueError(f"initial_history must have shape (n_hist, 6, {n}) or "
                         f"({n_batch}, n_hist, 6, {n}), got {np.shape(initial_history)}.")
    if hist.shape[1] < horizon:
        raise ValueError(f"initial_history has {hist.shape[1]} steps but the largest delay "
                         f"needs {horizon} (max delay + 1).")
    return hist[:, -horizon:]


class _JansenRitBatch:
    """The state, the delayed-coupling buffer and the right-hand side of a batch of networks.

    Layout: node first, batch last, so that gathering a delayed value for every connection
    reads a contiguous run of n_batch numbers.
    """

    def __init__(self, cfg: JansenRitConfig, weights, delays, source_nodes, hist, tdtype, dev):
        import torch

        self.cfg, self.tdtype, self.dev = cfg, tdtype, dev
        n, n_batch, horizon = len(weights), len(source_nodes), hist.shape[1]
        self.n, self.n_batch, self.horizon = n, n_batch, horizon
        crow, src, dly, w = _incoming_csr(weights, delays)
        self.n_connections = len(src)
        self.c_a = c_a = cfg.coupling_strength(weights)
        # The buffer holds sigma_j(t) = sigmoid(coupling_r (v_j(t) - midpoint)); the coupling
        # is c_i = a [cmin sum_j w_ij + (cmax - cmin) sum_j w_ij sigma_j(t - 1 - d_ij)], i.e.
        # TVB's SigmoidalJansenRit with the affine part folded into the weights.
        # circular buffer: rows (step % horizon) * n + node hold sigma(v(step)) of every batch
        self.sbuf = torch.empty((horizon * n, n_batch), dtype=tdtype, device=dev)
        v_hist = self.T((hist[:, :, 1] - hist[:, :, 2]).transpose(1, 2, 0))  # (horizon, n, b)
        for m in range(horizon):
            row = (-m) % horizon
            self.sbuf[row * n:(row + 1) * n] = torch.sigmoid(
                self.coupling_arg(v_hist[horizon - 1 - m]))
        self.Y = self.T(hist[:, -1].transpose(1, 2, 0)).contiguous()  # state (6, n, batch)
        # gather rows for every step residue: idx_table[step % horizon][k] is the buffer row of
        # sigma_src[k](step - 1 - dly[k]); (horizon, nnz) int64, 36 MB for connectivity_998
        steps = np.arange(horizon)[:, None]
        self.idx_table = torch.as_tensor(((steps - 1 - dly[None, :]) % horizon) * n
                                         + src[None, :], device=dev)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            self.R = torch.sparse_csr_tensor(torch.as_tensor(crow, device=dev),
                                             torch.arange(len(src), device=dev),
                                             self.T(w * c_a * (cfg.cmax - cfg.cmin)),
                                             size=(n, len(src)))
        # (n, 1), + mu (see F4)
        self.c_const = self.T((weights.sum(1) * c_a * cfg.cmin + cfg.mu)[:, None])
        self.gathered = torch.empty((len(src), n_batch), dtype=tdtype, device=dev)
        self._linear_part(source_nodes)

    def T(self, x):
        import torch

        return torch.tensor(np.asarray(x), dtype=self.tdtype, device=self.dev)

    def coupling_arg(self, v):
        return (v - self.cfg.midpoint) * self.cfg.coupling_r

    def _linear_part(self, source_nodes) -> None:
        """JR as dY = L Y + F(Y): L is the linear part, F the sigmoid terms of rows 3, 4, 5,
        whose arguments are P Y + q (rows: r (y1 - y2 - v0), r (a1 J y0 - v0),
        r (a3 J y0 - v0))."""
        cfg, n, n_batch = self.cfg, self.n, self.n_batch
        A = np.full((n, n_batch), cfg.A)
        has_src = np.flatnonzero(source_nodes >= 0)
        A[source_nodes[has_src], has_src] = cfg.A_source
        self.Aa = self.T(A * cfg.a)
        a, b = cfg.a, cfg.b
        two_nu = 2.0 * cfg.nu_max
        L = np.zeros((6, 6))
        L[0, 3] = L[1, 4] = L[2, 5] = 1.0
        L[3, 3], L[3, 0] = -2 * a, -a * a
        L[4, 4], L[4, 1] = -2 * a, -a * a
        L[5, 5], L[5, 2] = -2 * b, -b * b
        P = np.zeros((3, 6))
        P[0, 1], P[0, 2] = cfg.r, -cfg.r
        P[1, 0] = cfg.r * cfg.a_1 * cfg.J
        P[2, 0] = cfg.r * cfg.a_3 * cfg.J
        self.L_t, self.P_t = self.T(L), self.T(P)
        self.q_t = self.T(np.full((3, 1), -cfg.r * cfg.v0))
        self.Aa2nu = self.Aa * two_nu
        self.k4 = cfg.a_2 * cfg.J * two_nu
        self.k5 = cfg.B * cfg.b * cfg.a_4 * cfg.J * two_nu

    def coupling(self, step: int):
        """Delayed coupling (+ mu): c_i = a sum_j w_ij S_j(step - 1 - d_ij) + mu."""
        import torch

        torch.index_select(self.sbuf, 0, self.idx_table[step % self.horizon], out=self.gathered)
        return (self.R @ self.gathered).add_(self.c_const)

    def dfun(self, Yk, c):
        """The Jansen-Rit right-hand side ``L Y + F(Y)`` with coupling ``c`` (holds mu)."""
        import torch

        n, n_batch = self.n, self.n_batch
        flat = Yk.view(6, n * n_batch)
        s = torch.sigmoid(torch.addmm(self.q_t, self.P_t, flat)).view(3, n, n_batch)
        d = torch.mm(self.L_t, flat).view(6, n, n_batch)
        d[3].addcmul_(self.Aa2nu, s[0])
        d[4].addcmul_(self.Aa, torch.add(c, s[1], alpha=self.k4))  # c already holds mu
        d[5].add_(s[2], alpha=self.k5)
        return d

    def store(self, step: int, v) -> None:
        """Keep sigma(v(step)) in the circular buffer."""
        import torch

        row = step % self.horizon
        torch.sigmoid(self.coupling_arg(v), out=self.sbuf[row * self.n:(row + 1) * self.n])


class _Noise:
    """The stochastic term: each batch element draws from its own stream, in blocks of steps."""

    def __init__(self, cfg: JansenRitConfig, seed, stream_ids, n, noise_block, n_steps, tdtype,
                 dev):
        import torch

        self.gens = None
        if cfg.noise:
            self.gens = [torch.Generator(device=dev).manual_seed(stream_seed(seed, s))
                         for s in stream_ids]
        self.amp = math.sqrt(2.0 * cfg.nsig * cfg.dt)
        self.n, self.block, self.n_steps = n, noise_block, n_steps
        self.tdtype, self.dev = tdtype, dev
        self.buf = None

    def draw(self, step: int):
        """The noise of ``step`` (n, n_batch), or None without noise."""
        import torch

        if self.gens is None:
            return None
        k = (step - 1) % self.block
        if k == 0:
            blk = min(self.block, self.n_steps - step + 1)
            # each batch element draws from its own stream: (blk, n) per element
            self.buf = torch.stack([torch.randn((blk, self.n), generator=g, device=self.dev,
                                                dtype=self.tdtype) for g in self.gens], -1)
            self.buf *= self.amp
        return self.buf[k]


def _integrate(net: _JansenRitBatch, noise: _Noise, cfg: JansenRitConfig, n_steps: int,
               n_out: int, progress):
    """Stochastic Heun steps 1..n_steps; the decimated ``y1 - y2`` (n_out, n, n_batch)."""
    import torch

    dt, Y = cfg.dt, net.Y
    out = torch.empty((n_out, net.n, net.n_batch), dtype=net.tdtype, device=net.dev)
    first = cfg.transient_steps + 1
    with torch.no_grad():
        for step in range(1, n_steps + 1):
            c = net.coupling(step)
            k1 = net.dfun(Y, c)
            inter = torch.add(Y, k1, alpha=dt)
            eta = noise.draw(step)
            if eta is not None:
                inter[4] += eta
            k1 += net.dfun(inter, c)
            Y.add_(k1, alpha=0.5 * dt)
            if eta is not None:
                Y[4] += eta
            v = Y[1] - Y[2]
            net.store(step, v)
            if step >= first and (step - first) % cfg.decimation == 0:
                out[(step - first) // cfg.decimation] = v
            if progress is not None and step % 500 == 0:
                progress(500)
        if progress is not None and n_steps % 500:
            progress(n_steps % 500)
    return out
