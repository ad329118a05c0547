"""LightBunny: residual MLP over channels, a GRU to sources, and a LightTS block over time."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .blocks import IEBlock, ResidualMLP, SourceNet, check_chunk_size, init_linear_xavier


class LightTSBlock(nn.Module):
    """LightTS temporal block applied to every source independently (plus source mixing).

    Input and output ``(batch, n_times, n_sources)``. The time axis is cut into
    ``n_chunks = n_times // chunk_size`` chunks of ``chunk_size`` samples in two ways:

    - *contiguous*: chunk ``j`` holds samples ``j * chunk_size ... (j + 1) * chunk_size - 1``;
    - *interval*: chunk ``j`` holds samples ``j, j + n_chunks, j + 2 n_chunks, ...``.

    Each view goes through its own :class:`IEBlock` (chunks as nodes, ``chunk_size -> d_model //
    4`` features) and a linear projection across chunks to one vector per source. The two
    vectors (``d_model // 2`` features per source) go through a final IEBlock whose nodes are the
    sources and whose output is ``n_times`` samples; a linear autoregressive "highway" over
    time (``n_times -> n_times``) is added.

    After LightTS (Zhang et al. 2022, "Less is more: fast multivariate time series forecasting
    with light sampling-oriented MLP structures") as used by the LightBunny research code
    (github.com/hareeen/LightBunny, ``network/lightbunny.py``, class ``LightTS``).

    Parameters
    ----------
    n_times : int
        Samples per input; a multiple of ``chunk_size``.
    n_sources : int
        Number of sources (nodes of the final IE block).
    chunk_size : int
        Samples per chunk.
    d_model : int
        Width; chunk features are ``d_model // 4`` per view.
    dropout : float
        Dropout on the concatenated chunk features before the final IE block.
    """

    def __init__(self, n_times: int, n_sources: int, chunk_size: int, d_model: int,
                 dropout: float = 0.0):
        super().__init__()
        check_chunk_size(n_times, chunk_size)
        if d_model < 16 or d_model % 4:
            raise ValueError(f"d_model ({d_model}) must be a multiple of 4 and at least 16.")
        self.n_times = n_times
        self.chunk_size = chunk_size
        self.n_chunks = n_times // chunk_size
        quarter = d_model // 4
        self.contiguous = IEBlock(chunk_size, quarter, quarter, self.n_chunks)
        self.contiguous_proj = nn.Linear(self.n_chunks, 1)
        self.interval = IEBlock(chunk_size, quarter, quarter, self.n_chunks)
        self.interval_proj = nn.Linear(self.n_chunks, 1)
        self.dropout = nn.Dropout(dropout)
        self.combine = IEBlock(2 * quarter, 2 * quarter, n_times, n_sources)
        self.highway = nn.Linear(n_times, n_times)

    def reset_node_mix(self) -> None:
        for block in (self.contiguous, self.interval, self.combine):
            block.reset_node_mix()

    @staticmethod
    def _summarise(blocks: Tensor, ie: IEBlock, proj: nn.Linear) -> Tensor:
        # blocks: (batch * n_sources, n_chunks, chunk_size) -> (batch * n_sources, d_model // 4)
        h = ie(blocks)  # (B*S, n_chunks, d_model // 4)
        return proj(h.transpose(1, 2)).squeeze(-1)

    def forward(self, x: Tensor) -> Tensor:
        batch, n_times, n_sources = x.shape
        series = x.transpose(1, 2)  # (batch, n_sources, n_times)
        highway = self.highway(series)  # (batch, n_sources, n_times)

        flat = series.reshape(batch * n_sources, n_times)
        contiguous = flat.reshape(-1, self.n_chunks, self.chunk_size)
        interval = flat.reshape(-1, self.chunk_size, self.n_chunks).transpose(1, 2)
        features = torch.cat(
            [self._summarise(contiguous, self.contiguous, self.contiguous_proj),
             self._summarise(interval, self.interval, self.interval_proj)],
            dim=-1,
        ).reshape(batch, n_sources, -1)  # (batch, n_sources, d_model // 2)

        out = self.combine(self.dropout(features)) + highway  # (batch, n_sources, n_times)
        return out.transpose(1, 2)


class LightBunny(SourceNet):
    """LightBunny source-imaging network (the default model).

    EEG ``(batch, n_times, n_chans)`` -> :class:`~lightbunny.models.blocks.ResidualMLP` (GELU,
    ``n_chans -> d_model``) at every sample -> one-layer GRU (``d_model -> n_sources``) ->
    :class:`LightTSBlock` over time -> sources ``(batch, n_times, n_sources)``.

    With the research defaults (``n_chans=64, n_times=500, n_sources=994, d_model=256,
    chunk_size=25``) the network has 5,064,360 parameters (5.06 M). Re-implemented from
    github.com/hareeen/LightBunny (``network/lightbunny.py``).

    Parameters
    ----------
    n_chans : int
        EEG channels.
    n_times : int
        Samples per input window; a multiple of ``chunk_size``.
    n_sources : int
        Source regions estimated.
    d_model : int
        Width of the channel transform and of the LightTS features.
    chunk_size : int
        LightTS chunk length in samples.
    dropout : float
        Dropout before LightTS's final IE block. The research code stored ``dropout=0.2`` in its
        config but never applied it in LightBunny, so the default 0.0 reproduces it.
    gru_hidden : int, optional
        Hidden size of the GRU. None (default, the published network): ``n_sources``, the GRU
        outputs the sources directly. A smaller value adds a linear map ``gru_hidden ->
        n_sources`` after the GRU: at 994 regions, ``gru_hidden=128, d_model=128`` trains about
        5x faster on a CPU (1.5 M parameters instead of 5.06 M), the GRU's recurrent matrix being
        most of the cost.

    Examples
    --------
    >>> import torch
    >>> net = LightBunny(n_chans=4, n_times=20, n_sources=6, d_model=16, chunk_size=5)
    >>> net(torch.zeros(2, 20, 4)).shape
    torch.Size([2, 20, 6])
    """

    name = "lightbunny"

    def __init__(self, n_chans: int = 64, n_times: int = 500, n_sources: int = 994, *,
                 d_model: int = 256, chunk_size: int = 25, dropout: float = 0.0,
                 gru_hidden: int | None = None):
        super().__init__()
        check_chunk_size(n_times, chunk_size)
        self.n_chans, self.n_times, self.n_sources = int(n_chans), int(n_times), int(n_sources)
        self.d_model, self.chunk_size, self.dropout = int(d_model), int(chunk_size), float(dropout)
        self.channel_mlp = ResidualMLP(self.n_chans, self.d_model, activation="gelu")
        self.gru_hidden = None if gru_hidden is None else int(gru_hidden)
        if self.gru_hidden is not None and self.gru_hidden < 1:
            raise ValueError(f"gru_hidden must be a positive integer or None, got {gru_hidden!r}.")
        hidden = self.n_sources if self.gru_hidden is None else self.gru_hidden
        self.source_gru = nn.GRU(self.d_model, hidden, num_layers=1, batch_first=True)
        # published network: the GRU's outputs are the sources; narrower GRU: a linear map up
        self.source_proj = (None if self.gru_hidden is None
                            else nn.Linear(self.gru_hidden, self.n_sources))
        self.lightts = LightTSBlock(self.n_times, self.n_sources, self.chunk_size, self.d_model,
                                    self.dropout)
        init_linear_xavier(self)
        self.lightts.reset_node_mix()

    def get_config(self) -> dict:
        return {"n_chans": self.n_chans, "n_times": self.n_times, "n_sources": self.n_sources,
                "d_model": self.d_model, "chunk_size": self.chunk_size, "dropout": self.dropout,
                **({} if self.gru_hidden is None else {"gru_hidden": self.gru_hidden})}

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, n_times, n_chans)`` -> ``(batch, n_times, n_sources)``."""
        self._check_input(x)
        h = self.channel_mlp(x)  # (batch, n_times, d_model)
        h, _ = self.source_gru(h)  # (batch, n_times, gru_hidden or n_sources)
        if self.source_proj is not None:
            h = self.source_proj(h)  # (batch, n_times, n_sources)
        return self.lightts(h)
