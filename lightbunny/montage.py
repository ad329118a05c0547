"""EEG montages: channel names and electrode positions, for leadfields and for recordings.

:func:`resolve_montage` turns a montage specification (a name, a list of channel names, an
``mne.Info`` or a ``DigMontage``) into channel names and positions (mm) for
:func:`lightbunny.leadfield.make_leadfield`; :func:`channel_montage` gives the
``mne.channels.DigMontage`` of a model's channels that :func:`lightbunny.io.realign_channels`
interpolates missing channels with. The names here are also importable from
:mod:`lightbunny.leadfield`, where they lived first.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from .utils import OLD_NAMES, check_option

#: The 64 channels of the PhysioNet EEG Motor Movement/Imagery recordings, in their file order:
#: the montage of the published LightBunny model (see shared/anatomy/README.md).
PHYSIONET_64 = (
    "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
    "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz",
    "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "FT7", "FT8", "T7", "T8",
    "T9", "T10", "TP7", "TP8", "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "PO7", "PO3",
    "POz", "PO4", "PO8", "O1", "Oz", "O2", "Iz",
)
DEFAULT_MONTAGE = "standard_1020_64"
#: Montage names understood besides MNE's built-in ones.
EXTRA_MONTAGES = {DEFAULT_MONTAGE: "64 channels of the 10-10 system (PhysioNet EEGMMI order)",
                  "tvb65": "tvb-data's own 65 EEG sensors (tvb76 head only)",
                  "deepsif75": "DeepSIF's 75-channel cap (electrode_75.mat in the data folder)"}
#: Old 10-20 names and their 10-10 equivalents.
TVB_SENSOR_SHIFT_ALS = np.array([-12.7, -0.2, -60.9])


def montage_names() -> list:
    """Names accepted by :func:`lightbunny.leadfield.make_leadfield` for ``montage``."""
    import mne

    return list(EXTRA_MONTAGES) + list(mne.channels.get_builtin_montages())


def _reference_montage() -> str:
    """MNE's 10-05 positions: 'colin27_1005' (MNE >= 1.12), formerly 'standard_1005' (the same
    positions, which the seed used; they lie a median 4.3 mm from fsaverage's head surface)."""
    import mne

    builtin = mne.channels.get_builtin_montages()
    return "colin27_1005" if "colin27_1005" in builtin else "standard_1005"


def _standard_positions(name: str | None = None) -> dict:
    """Channel positions (mm, fsaverage MRI frame) of an MNE built-in montage."""
    import mne

    name = name or _reference_montage()

    montage = mne.channels.make_standard_montage(name)
    pos = montage.get_positions()
    names = list(pos["ch_pos"])
    xyz = np.array([pos["ch_pos"][n] for n in names], dtype=float)
    if pos["coord_frame"] == "head":
        xyz = mne.transforms.apply_trans(_fsaverage_trans(), xyz)
    return dict(zip(names, xyz * 1000.0))


def _fsaverage_trans():
    import mne

    return mne.read_trans(Path(mne.__file__).parent / "data" / "fsaverage" / "fsaverage-trans.fif")


def _canonical(name: str) -> str:
    """Old 10-20 names to 10-10 ones, for matching (case kept)."""
    return OLD_NAMES.get(name, name)


def _lookup(names, table: dict, what: str) -> list:
    """Match ``names`` case-insensitively (old 10-20 names accepted) to keys of ``table``."""
    lower = {k.lower(): k for k in table}
    out, missing = [], []
    for n in names:
        key = lower.get(_canonical(str(n).strip()).lower())
        if key is None:
            key = lower.get(OLD_NAMES.get(str(n).strip().upper(), "").lower())
        if key is None:
            missing.append(str(n))
        else:
            out.append(key)
    if missing:
        hints = []
        for m in missing:
            close = difflib.get_close_matches(m, list(table), n=3, cutoff=0.5)
            hints.append(f"{m!r}" + (f" (close: {', '.join(close)})" if close else ""))
        raise ValueError(f"Channel names not in {what}: {'; '.join(hints)}. Use names of the "
                         "10-05 system (e.g. 'Fp1', 'Cz', 'T7') or pass an mne.Info with "
                         "positions.")
    return out


def resolve_montage(montage=DEFAULT_MONTAGE, data_dir=None):
    """Channel names and positions of a montage specification.

    Parameters
    ----------
    montage : str | list of str | mne.Info | mne.channels.DigMontage
        A name from :func:`montage_names` (``deepsif75`` reads ``electrode_75.mat`` from the
        fsaverage994 data folder ``data_dir``), a list of channel names (positions taken from
        MNE's 10-05 montage, ``colin27_1005``, formerly ``standard_1005``), an ``mne.Info`` with
        EEG channel positions, or a ``DigMontage``.

    Returns
    -------
    label : str
        Short description stored with the leadfield.
    ch_names : list of str
    pos : ndarray, shape (n_chans, 3), mm
    frame : {'fsaverage', 'tvb', 'unknown'}
        The frame of ``pos``: fsaverage MRI coordinates (``deepsif75``: EEGLAB's head frame moved
        to fsaverage, see :func:`lightbunny.headmodel.eeglab_to_fsaverage`), tvb-data's sensor
        frame (RAS), or an unknown frame (a ``DigMontage`` with ``coord_frame='unknown'``,
        EEGLAB locations), which :func:`lightbunny.leadfield.place_electrodes` maps onto the
        10-05 positions by a similarity transform.
    """
    import mne

    if isinstance(montage, str):
        return _named_montage(montage, data_dir)
    if isinstance(montage, mne.Info):
        return _info_montage(montage)
    if isinstance(montage, mne.channels.DigMontage):
        return _dig_montage(montage)
    return _listed_montage(montage)


def _named_montage(name: str, data_dir):
    """:func:`resolve_montage` of a montage name."""
    if name == "tvb65":
        names, pos = tvb_sensors()
        return name, names, pos, "tvb"
    if name == "deepsif75":
        from .atlas import check_data_dir
        from .headmodel import eeglab_to_fsaverage

        root = check_data_dir(data_dir, files=("electrode_75.mat",))
        names, pos = read_eeglab_locations(root / "electrode_75.mat", "eloc75")
        # EEGLAB's head frame (X nose, Y left ear): the frame DeepSIF computed its leadfield in;
        # moved to fsaverage by the axis swap MNE uses for EEGLAB files
        return name, names, eeglab_to_fsaverage(pos), "fsaverage"
    check_option("montage", name, montage_names())
    if name == DEFAULT_MONTAGE:
        table = _standard_positions()
        names = _lookup(PHYSIONET_64, table, "MNE's 10-05 montage")
        return name, names, np.array([table[n] for n in names]), "fsaverage"
    table = _standard_positions(name)
    names = list(table)
    return name, names, np.array([table[n] for n in names]), "fsaverage"


def _info_montage(info):
    """:func:`resolve_montage` of an ``mne.Info`` (EEG channels with positions, head frame)."""
    import mne

    picks = mne.pick_types(info, eeg=True, exclude=[])
    if len(picks) == 0:
        raise ValueError("The mne.Info has no EEG channels.")
    names = [info["ch_names"][p] for p in picks]
    pos = np.array([info["chs"][p]["loc"][:3] for p in picks]) * 1000.0
    bad = ~np.isfinite(pos).all(1) | (np.abs(pos).sum(1) == 0)
    if bad.any():
        raise ValueError(f"Channels without positions in the mne.Info: "
                         f"{[names[i] for i in np.flatnonzero(bad)]}. Set a montage first "
                         "(raw.set_montage('standard_1005')).")
    # mne.Info positions are in the head frame: fsaverage head -> MRI
    pos = mne.transforms.apply_trans(_fsaverage_trans(), pos / 1000.0) * 1000.0
    return "info", names, pos, "fsaverage"


def _dig_montage(montage):
    """:func:`resolve_montage` of an ``mne.channels.DigMontage``."""
    import mne

    p = montage.get_positions()
    names = list(p["ch_pos"])
    pos = np.array([p["ch_pos"][n] for n in names], dtype=float)
    if p["coord_frame"] == "head":
        pos = mne.transforms.apply_trans(_fsaverage_trans(), pos)
    frame = "unknown" if p["coord_frame"] == "unknown" else "fsaverage"
    return "digmontage", names, pos * 1000.0, frame


def _listed_montage(montage):
    """:func:`resolve_montage` of a list of channel names (positions from the 10-05 montage)."""
    names = [str(n) for n in montage]
    if not names:
        raise ValueError("The montage's channel list is empty.")
    if len(set(n.lower() for n in names)) != len(names):
        raise ValueError(f"Duplicate channel names in the montage: {names}")
    table = _standard_positions()
    keys = _lookup(names, table, "MNE's 10-05 montage")
    return "custom", names, np.array([table[k] for k in keys]), "fsaverage"


def read_eeglab_locations(path, variable: str | None = None):
    """Channel names and X/Y/Z (mm, EEGLAB's frame) of an EEGLAB ``chanlocs`` struct in a .mat.

    Returns
    -------
    names : list of str
    pos : ndarray, shape (n_chans, 3)
    """
    import scipy.io as sio

    mat = sio.loadmat(path)
    keys = [k for k in mat if not k.startswith("__")]
    variable = variable or keys[0]
    locs = mat[variable].ravel()
    names = [str(np.asarray(c["labels"]).ravel()[0]) for c in locs]
    pos = np.array([[float(np.asarray(c[k]).ravel()[0]) for k in ("X", "Y", "Z")] for c in locs])
    return names, pos


def tvb_sensors():
    """tvb-data's 65 EEG sensors moved onto its ``scalp_1082`` surface, RAS mm.

    Returns
    -------
    names : list of str
        10-10 names (tvb-data's 'T8/T4' style names keep their first part).
    pos : ndarray, shape (65, 3), mm
    """
    from .atlas import _als_to_ras, _tvb_data_path

    rows = np.genfromtxt(_tvb_data_path("sensors", "eeg_brainstorm_65.txt"), dtype=None,
                         encoding=None)
    names = [str(r[0]).split("/")[0] for r in rows]
    pos = np.array([[r[1], r[2], r[3]] for r in rows], dtype=float) + TVB_SENSOR_SHIFT_ALS
    return names, _als_to_ras(pos)


def channel_montage(ch_names, positions=None):
    """Positions of ``ch_names`` for spline interpolation and topomaps.

    Parameters
    ----------
    ch_names : sequence of str
    positions : dict, optional
        Channel name -> xyz (m, MNE head frame); default MNE's 10-05 montage.

    Returns
    -------
    montage : mne.channels.DigMontage or None
        MNE's 10-05 montage (``positions=None``; channels matched case-insensitively, head
        frame from its fiducials) or a montage of ``positions``; None if some channels have no
        position.
    unknown : list of str
        Channels without a position.

    Examples
    --------
    >>> montage, unknown = channel_montage(["cz", "Pz", "X9"])
    >>> montage, unknown
    (None, ['X9'])
    >>> channel_montage(["cz", "Pz"])[0].ch_names[:3]
    ['Fp1', 'Fpz', 'Fp2']
    """
    import mne

    if positions is None:
        montage = mne.channels.make_standard_montage(_reference_montage())
        names = montage.ch_names
    else:
        table = {str(k): np.asarray(v, dtype=float) for k, v in dict(positions).items()}
        names = list(table)
    lower = {k.casefold(): k for k in names}
    unknown = [c for c in ch_names if c.casefold() not in lower]
    if unknown:
        return None, unknown
    if positions is None:
        rename = {lower[c.casefold()]: c for c in ch_names}
        montage.rename_channels({k: v for k, v in rename.items() if k != v})
        return montage, []
    return mne.channels.make_dig_montage(ch_pos={c: table[lower[c.casefold()]]
                                                 for c in ch_names}, coord_frame="head"), []


__all__ = ["PHYSIONET_64", "DEFAULT_MONTAGE", "EXTRA_MONTAGES", "OLD_NAMES", "montage_names",
           "resolve_montage", "read_eeglab_locations", "tvb_sensors", "channel_montage"]
