"""DeepSIF baseline: residual MLP spatial filter and a multi-layer LSTM temporal filter."""

from __future__ import annotations

from torch import Tensor, nn

from .blocks import ResidualMLP, SourceNet, init_linear_xavier


class DeepSIF(SourceNet):
    """DeepSIF (Sun et al. 2022, PNAS) as used for comparison in the LightBunny research code.

    EEG ``(batch, n_times, n_chans)`` -> :class:`~lightbunny.models.blocks.ResidualMLP` (ELU,
    ``n_chans -> n_hidden`` with an output layer) at every sample -> ``n_lstm_layers``-layer
    LSTM (``n_hidden -> n_sources``) -> sources ``(batch, n_times, n_sources)``.

    With 64 channels, 994 sources and the defaults it has 22,100,556 parameters (22.1 M).
    Re-implemented from github.com/bfinl/DeepSIF (``network.py``, ``TemporalInverseNet``) and
    github.com/hareeen/LightBunny (``network/deepsif.py``).

    Parameters
    ----------
    n_chans : int
        EEG channels.
    n_times : int or None
        Window length the network is used with. Recorded in the config for bookkeeping only:
        the LSTM accepts inputs of any length.
    n_sources : int
        Source regions estimated (the LSTM's hidden size).
    n_hidden : int
        Width of the spatial filter output.
    n_lstm_layers : int
        Stacked LSTM layers.

    Examples
    --------
    >>> import torch
    >>> net = DeepSIF(n_chans=4, n_times=20, n_sources=6, n_hidden=8, n_lstm_layers=2)
    >>> net(torch.zeros(2, 20, 4)).shape
    torch.Size([2, 20, 6])
    """

    name = "deepsif"
    fixed_n_times = False

    def __init__(self, n_chans: int = 64, n_times: int | None = 500, n_sources: int = 994, *,
                 n_hidden: int = 500, n_lstm_layers: int = 3):
        super().__init__()
        self.n_chans, self.n_sources = int(n_chans), int(n_sources)
        self.n_times = None if n_times is None else int(n_times)
        self.n_hidden, self.n_lstm_layers = int(n_hidden), int(n_lstm_layers)
        self.spatial = ResidualMLP(self.n_chans, self.n_hidden, activation="elu", output_layer=True)
        self.temporal = nn.LSTM(self.n_hidden, self.n_sources, num_layers=self.n_lstm_layers,
                                batch_first=True)
        init_linear_xavier(self)

    def get_config(self) -> dict:
        return {"n_chans": self.n_chans, "n_times": self.n_times, "n_sources": self.n_sources,
                "n_hidden": self.n_hidden, "n_lstm_layers": self.n_lstm_layers}

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, n_times, n_chans)`` -> ``(batch, n_times, n_sources)``."""
        self._check_input(x)
        out, _ = self.temporal(self.spatial(x))
        return out
