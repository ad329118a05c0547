"""Source-imaging networks and their registry.

Every network maps EEG ``(batch, n_times, n_chans)`` to sources ``(batch, n_times,
n_sources)``, takes explicit keyword arguments (signal sizes first) and returns them from
``get_config()``, so a checkpoint can rebuild it with :func:`model_from_config`.

==============  =========================================================  ====================
name            architecture                                               params (64 ch, 994)
==============  =========================================================  ====================
``lightbunny``  residual MLP -> GRU -> LightTS (default)                   5.06 M
``deepsif``     residual MLP (ELU) -> 3-layer LSTM                         22.1 M
``bunny``       residual MLP -> GRU -> SegRNN-style segment GRU            4.32 M
==============  =========================================================  ====================

Examples
--------
>>> import torch
>>> net = build_model("lightbunny", n_chans=4, n_times=20, n_sources=6, d_model=16,
...                   chunk_size=5, random_state=0)
>>> model_from_config("lightbunny", net.get_config())(torch.zeros(1, 20, 4)).shape
torch.Size([1, 20, 6])
"""

from __future__ import annotations

import torch

from ..utils import check_option
from .blocks import IEBlock, ResidualMLP, SourceNet, check_chunk_size
from .bunny import Bunny
from .deepsif import DeepSIF
from .lightbunny import LightBunny, LightTSBlock

#: registry: model name -> class
MODELS: dict[str, type[SourceNet]] = {cls.name: cls for cls in (LightBunny, DeepSIF, Bunny)}

DEFAULT_MODEL = "lightbunny"


def build_model(name: str = DEFAULT_MODEL, *, random_state: int | None = None,
                **kwargs) -> SourceNet:
    """Build the registered network ``name`` with keyword arguments ``kwargs``.

    Parameters
    ----------
    name : str
        One of :data:`MODELS` (``'lightbunny'``, ``'deepsif'``, ``'bunny'``).
    random_state : int or None
        Seed for the weight initialisation. The global torch generator is left untouched when
        given (the seed is applied inside :func:`torch.random.fork_rng`).
    **kwargs
        Constructor arguments, e.g. ``n_chans=64, n_times=500, n_sources=994``.
    """
    check_option("model", name, MODELS)
    cls = MODELS[name]
    if random_state is None:
        return cls(**kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state))
        return cls(**kwargs)


def model_from_config(name: str, config: dict) -> SourceNet:
    """Rebuild a network from its name and ``get_config()`` dict (weights are not restored)."""
    check_option("model", name, MODELS)
    cls = MODELS[name]
    try:
        return cls(**config)
    except TypeError as err:
        raise ValueError(f"config {config!r} does not fit model {name!r}: {err}") from None


def model_name(model: torch.nn.Module) -> str:
    """The registry name of ``model``; ValueError for networks not in :data:`MODELS`."""
    name = getattr(model, "name", None)
    if name not in MODELS or not isinstance(model, MODELS[name]):
        raise ValueError(f"{type(model).__name__} is not a registered model; registered: "
                         f"{', '.join(sorted(MODELS))}.")
    return name


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["MODELS", "DEFAULT_MODEL", "build_model", "model_from_config", "model_name",
           "count_parameters", "LightBunny", "DeepSIF", "Bunny", "SourceNet", "ResidualMLP",
           "IEBlock", "LightTSBlock", "check_chunk_size"]
