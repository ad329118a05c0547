"""Building blocks shared by the source-imaging networks, each written once.

Every network in :mod:`lightbunny.models` maps EEG of shape ``(batch, n_times, n_chans)`` to
source activity of shape ``(batch, n_times, n_sources)``. The blocks here are the pieces more
than one of them needs: the residual MLP that transforms the channel axis at every time sample,
the LightTS "information exchange" block, weight initialisation and input checks.

The architecture follows the public LightBunny research code (github.com/hareeen/LightBunny,
``network/*.py`` and ``util.py``) and DeepSIF (github.com/bfinl/DeepSIF, ``network.py``); the
code here is a re-implementation, not a copy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..utils import check_option

ACTIVATIONS = {"gelu": nn.GELU, "elu": nn.ELU, "relu": nn.ReLU}


def check_chunk_size(n_times: int, chunk_size: int) -> None:
    """Raise a ValueError unless ``n_times`` is a positive multiple of ``chunk_size``.

    Examples
    --------
    >>> check_chunk_size(500, 25)
    >>> check_chunk_size(512, 25)
    Traceback (most recent call last):
    ...
    ValueError: n_times (512) must be a multiple of chunk_size (25); use e.g. n_times=500 or 525.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size ({chunk_size}) must be a positive integer.")
    if n_times < 1 or n_times % chunk_size:
        lower = n_times // chunk_size * chunk_size
        upper = lower + chunk_size
        hint = f"use e.g. n_times={lower} or {upper}" if lower > 0 else f"use e.g. n_times={upper}"
        raise ValueError(f"n_times ({n_times}) must be a multiple of chunk_size ({chunk_size}); "
                         f"{hint}.")


def init_linear_xavier(module: nn.Module) -> None:
    """Xavier-uniform weights and biases of 0.01 for every ``nn.Linear`` below ``module``.

    This is the initialisation the LightBunny research code applies to all three networks
    (``util.init_weights``); recurrent layers keep PyTorch's defaults.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.01)


class SourceNet(nn.Module):
    """Base class: EEG ``(batch, n_times, n_chans)`` -> sources ``(batch, n_times, n_sources)``.

    Subclasses set ``name`` (the registry key), store their constructor arguments and return
    them from :meth:`get_config`, so ``type(net)(**net.get_config())`` rebuilds the network.
    """

    name: str = ""
    #: whether the network only accepts inputs of exactly ``n_times`` samples
    fixed_n_times: bool = True

    def get_config(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__} expects EEG of shape (batch, n_times, "
                             f"n_chans), got a tensor with shape {tuple(x.shape)}.")
        if x.shape[2] != self.n_chans:
            raise ValueError(f"{type(self).__name__} was built for n_chans={self.n_chans}, got "
                             f"input with {x.shape[2]} channels (shape {tuple(x.shape)}, expected "
                             f"(batch, n_times, n_chans)).")
        if self.fixed_n_times and x.shape[1] != self.n_times:
            raise ValueError(f"{type(self).__name__} was built for n_times={self.n_times}, got "
                             f"input with {x.shape[1]} samples (shape {tuple(x.shape)}).")


class ResidualMLP(nn.Module):
    """Per-sample feature transform: two residual blocks, optionally an output layer.

    Applied independently to every time sample (the last axis is the feature axis)::

        block 1:  h = act(x + L2(act(L1(x))))          n_in -> n_in
        block 2:  y = act(S(h) + L4(act(L3(h))))       n_in -> n_out, S a linear shortcut
        output:   y = act(L5(y))                       n_out -> n_out  (if ``output_layer``)

    Activation placement: an activation follows each residual sum. The research code
    (``ResidualLinear`` in LightBunny/Bunny, ``ResidualLinearBlock`` in DeepSIF) calls the *first*
    block's final activation module again at the end of the second block, leaving the second
    block's own activation module unused; as these activations have no parameters this is the
    same function, so we simply apply one activation after each block. Outputs and parameter
    counts are identical to the seed's.

    Parameters
    ----------
    n_in, n_out : int
        Feature sizes in and out (e.g. ``n_chans`` and ``d_model``).
    activation : {'gelu', 'elu', 'relu'}
        GELU in LightBunny and Bunny, ELU in DeepSIF.
    output_layer : bool
        Append a linear layer with activation (DeepSIF's third block).

    Examples
    --------
    >>> import torch
    >>> mlp = ResidualMLP(64, 256)
    >>> mlp(torch.zeros(2, 500, 64)).shape
    torch.Size([2, 500, 256])
    >>> sum(p.numel() for p in mlp.parameters())
    45760
    """

    def __init__(self, n_in: int, n_out: int, activation: str = "gelu", output_layer: bool = False):
        super().__init__()
        check_option("activation", activation, ACTIVATIONS)
        self.block1_in = nn.Linear(n_in, n_in)
        self.block1_out = nn.Linear(n_in, n_in)
        self.block2_in = nn.Linear(n_in, n_in)
        self.block2_out = nn.Linear(n_in, n_out)
        self.shortcut = nn.Linear(n_in, n_out)
        self.output = nn.Linear(n_out, n_out) if output_layer else None
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: Tensor) -> Tensor:
        act = self.act
        # one activation after each residual sum (the seed reuses block 1's module for block 2's;
        # parameter-free, so the same function)
        h = act(x + self.block1_out(act(self.block1_in(x))))
        y = act(self.shortcut(h) + self.block2_out(act(self.block2_in(h))))
        if self.output is not None:
            y = act(self.output(y))
        return y


class IEBlock(nn.Module):
    """LightTS "information exchange" block over a set of nodes.

    Input ``(batch, n_nodes, n_in)`` -> output ``(batch, n_nodes, n_out)``:

    1. an MLP on the feature axis of each node: ``n_in -> n_hidden -> n_hidden // 4``
       (LeakyReLU in between);
    2. a residual linear mixing across the nodes, ``h + M h`` with ``M`` (n_nodes x n_nodes)
       initialised to the identity;
    3. a linear projection ``n_hidden // 4 -> n_out``.

    After LightTS (Zhang et al. 2022) as used in the LightBunny research code
    (``network/lightbunny.py``, class ``IEBlock``), which works on the transposed layout.

    Examples
    --------
    >>> import torch
    >>> block = IEBlock(n_in=25, n_hidden=64, n_out=64, n_nodes=20)
    >>> block(torch.zeros(3, 20, 25)).shape
    torch.Size([3, 20, 64])
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, n_nodes: int):
        super().__init__()
        if n_hidden < 4:
            raise ValueError(f"n_hidden ({n_hidden}) must be at least 4.")
        self.mlp = nn.Sequential(
            nn.Linear(n_in, n_hidden),
            nn.LeakyReLU(),
            nn.Linear(n_hidden, n_hidden // 4),
        )
        self.node_mix = nn.Linear(n_nodes, n_nodes)
        self.proj = nn.Linear(n_hidden // 4, n_out)
        self.reset_node_mix()

    def reset_node_mix(self) -> None:
        """Set the node-mixing weights to the identity (call again after a global init)."""
        with torch.no_grad():
            nn.init.eye_(self.node_mix.weight)

    def forward(self, x: Tensor) -> Tensor:
        h = self.mlp(x)  # (batch, n_nodes, n_hidden // 4)
        h = h + self.node_mix(h.transpose(1, 2)).transpose(1, 2)
        return self.proj(h)
