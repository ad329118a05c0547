"""LightBunny: deep-learning EEG source imaging.

Estimate the location, extent and time course of brain activity from scalp EEG with a
network trained on simulated (source, EEG) pairs. Heavy dependencies (MNE, torch, TVB,
nilearn) are imported where they are needed so that ``import lightbunny`` stays fast.
"""

from ._logging import logger

__version__ = "0.1.0"

__all__ = ["__version__", "logger"]
