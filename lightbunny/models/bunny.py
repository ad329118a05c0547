"""Bunny baseline: residual MLP, a GRU to sources, and a segment-wise (SegRNN) GRU over time."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .blocks import ResidualMLP, SourceNet, check_chunk_size, init_linear_xavier


class Bunny(SourceNet):
    """Bunny: the recurrent predecessor of LightBunny.

    EEG ``(batch, n_times, n_chans)`` -> :class:`~lightbunny.models.blocks.ResidualMLP` (GELU,
    ``n_chans -> d_model``) -> one-layer GRU (``d_model -> n_sources``) -> a SegRNN-style
    encoder/decoder applied to each source's time course:

    - *encode*: the series is cut into ``n_segments = n_times // chunk_size`` segments, each
      embedded (linear ``chunk_size -> d_model`` + ReLU) and read by a GRU (``d_model``);
    - *decode*: for every output segment, one GRU step from the encoder's final state, with a
      query made of a learned position embedding (``d_model // 2``) and a learned source
      embedding (``d_model // 2``); a dropout + linear head maps each state to ``chunk_size``
      samples.

    Output ``(batch, n_times, n_sources)``. Memory grows with ``batch * n_sources *
    n_segments`` decoder rows (the research code ran out of memory at batch 128 on an H100).
    Re-implemented from github.com/hareeen/LightBunny (``network/bunny.py``), itself after
    SegRNN (Lin et al. 2023); like the research code, no per-series normalisation is applied.

    Parameters
    ----------
    n_chans, n_times, n_sources : int
        Signal sizes; ``n_times`` must be a multiple of ``chunk_size``.
    d_model : int
        Width (even).
    chunk_size : int
        Segment length in samples.
    dropout : float
        Dropout before the output head.

    Examples
    --------
    >>> import torch
    >>> net = Bunny(n_chans=4, n_times=20, n_sources=6, d_model=8, chunk_size=5)
    >>> net(torch.zeros(2, 20, 4)).shape
    torch.Size([2, 20, 6])
    """

    name = "bunny"

    def __init__(self, n_chans: int = 64, n_times: int = 500, n_sources: int = 994, *,
                 d_model: int = 256, chunk_size: int = 25, dropout: float = 0.2):
        super().__init__()
        check_chunk_size(n_times, chunk_size)
        if d_model < 2 or d_model % 2:
            raise ValueError(f"d_model ({d_model}) must be even.")
        self.n_chans, self.n_times, self.n_sources = int(n_chans), int(n_times), int(n_sources)
        self.d_model, self.chunk_size, self.dropout = int(d_model), int(chunk_size), float(dropout)
        self.n_segments = self.n_times // self.chunk_size
        self.channel_mlp = ResidualMLP(self.n_chans, self.d_model, activation="gelu")
        self.source_gru = nn.GRU(self.d_model, self.n_sources, num_layers=1, batch_first=True)
        self.segment_embedding = nn.Sequential(nn.Linear(self.chunk_size, self.d_model), nn.ReLU())
        self.segment_gru = nn.GRU(self.d_model, self.d_model, num_layers=1, batch_first=True)
        self.position_embedding = nn.Parameter(torch.randn(self.n_segments, self.d_model // 2))
        self.source_embedding = nn.Parameter(torch.randn(self.n_sources, self.d_model // 2))
        self.head = nn.Sequential(nn.Dropout(self.dropout),
                                  nn.Linear(self.d_model, self.chunk_size))
        init_linear_xavier(self)

    def get_config(self) -> dict:
        return {"n_chans": self.n_chans, "n_times": self.n_times, "n_sources": self.n_sources,
                "d_model": self.d_model, "chunk_size": self.chunk_size, "dropout": self.dropout}

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, n_times, n_chans)`` -> ``(batch, n_times, n_sources)``."""
        self._check_input(x)
        batch = x.shape[0]
        n_src, n_seg, half = self.n_sources, self.n_segments, self.d_model // 2
        h, _ = self.source_gru(self.channel_mlp(x))  # (batch, n_times, n_sources)
        segments = h.transpose(1, 2).reshape(batch * n_src, n_seg, self.chunk_size)
        _, state = self.segment_gru(self.segment_embedding(segments))  # (1, batch*n_src, d_model)

        queries = torch.cat(
            [self.position_embedding.unsqueeze(0).expand(n_src, n_seg, half),
             self.source_embedding.unsqueeze(1).expand(n_src, n_seg, half)],
            dim=-1,
        )  # (n_src, n_seg, d_model), row order (source, segment)
        queries = queries.reshape(1, n_src * n_seg, self.d_model).expand(batch, -1, -1)
        queries = queries.reshape(batch * n_src * n_seg, 1, self.d_model)
        state = state.repeat_interleave(n_seg, dim=1)  # (1, batch*n_src*n_seg, d_model)
        _, decoded = self.segment_gru(queries, state)
        y = self.head(decoded).reshape(batch, n_src, self.n_times)
        return y.transpose(1, 2)
