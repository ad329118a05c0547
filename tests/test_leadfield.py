"""Leadfields: shapes, channel order, physics sanity, montages, cache and bad input."""

import numpy as np
import pytest

from lightbunny.atlas import load_atlas
from lightbunny.leadfield import PHYSIONET_64, Leadfield, make_leadfield, resolve_montage


@pytest.fixture(scope="module")
def tiny_lf(tiny_atlas, tmp_path_factory):
    return make_leadfield(tiny_atlas, ["Cz", "Fp1", "O2", "T7", "T8", "Pz", "Fz", "Oz"],
                          cache_dir=tmp_path_factory.mktemp("cache"))


def test_shape_and_channel_order(tiny_lf, tiny_atlas):
    assert tiny_lf.gain.shape == (8, tiny_atlas.n_regions)
    assert tiny_lf.ch_names == ("Cz", "Fp1", "O2", "T7", "T8", "Pz", "Fz", "Oz")
    assert np.isfinite(tiny_lf.gain).all()
    assert not tiny_lf.gain.flags.writeable


def test_rows_follow_the_requested_order(tiny_atlas, tiny_lf, tmp_path):
    lf = make_leadfield(tiny_atlas, ["Oz", "Cz"], cache_dir=tmp_path)
    np.testing.assert_allclose(lf.gain[0], tiny_lf.gain[7], rtol=1e-10)
    np.testing.assert_allclose(lf.gain[1], tiny_lf.gain[0], rtol=1e-10)


def test_radial_dipole_peaks_under_the_nearest_electrode(tiny_atlas, tmp_path):
    # the synthetic cortex is a sphere with radial normals: each region's potential is largest
    # at the electrodes closest to it
    lf = make_leadfield(tiny_atlas, "standard_1020_64", cache_dir=tmp_path)
    for r in range(tiny_atlas.n_regions):
        d = np.linalg.norm(lf.ch_pos - tiny_atlas.centres[r], axis=1)
        nearest = set(np.argsort(d)[:3])
        assert int(np.argmax(lf.gain[:, r])) in nearest, r


def test_tvb76_superficial_regions_peak_nearby(tmp_path):
    atlas = load_atlas("tvb76")
    lf = make_leadfield(atlas, "standard_1020_64", cache_dir=tmp_path)
    assert lf.gain.shape == (64, 76)
    assert lf.ch_names == PHYSIONET_64
    g = lf.average_referenced()
    # electrodes sit on the scalp (within 1 mm of the head surface after projection)
    from scipy.spatial import cKDTree

    from lightbunny.leadfield import head_surface

    verts, _, _ = head_surface(atlas)
    assert np.median(cKDTree(verts).query(lf.ch_pos)[0]) < 6.0  # scalp_1082 vertex spacing
    # regions near the scalp: the strongest channel lies near the region
    ch_dist = np.linalg.norm(lf.ch_pos[:, None] - atlas.centres[None], axis=-1)  # (64, 76)
    superficial = ch_dist.min(0) < np.percentile(ch_dist.min(0), 30)
    peak = np.abs(g).argmax(0)
    err = ch_dist[peak, np.arange(atlas.n_regions)] - ch_dist.min(0)
    assert np.median(err[superficial]) < 30.0


def test_free_sum_orientation_differs(tiny_atlas, tiny_lf, tmp_path):
    lf = make_leadfield(tiny_atlas, list(tiny_lf.ch_names), orientation="free_sum",
                        cache_dir=tmp_path)
    assert lf.orientation == "free_sum"
    assert not np.allclose(lf.gain, tiny_lf.gain)


def test_cache_round_trip(tiny_atlas, tmp_path):
    lf = make_leadfield(tiny_atlas, ["Cz", "Pz"], cache_dir=tmp_path)
    files = list(tmp_path.glob("*.h5"))
    assert len(files) == 1
    again = Leadfield.load(files[0])
    np.testing.assert_array_equal(again.gain, lf.gain)
    assert again.ch_names == ("Cz", "Pz") and again.atlas_name == "synthetic"
    assert again.attrs["sphere_radius_mm"] > 50
    cached = make_leadfield(tiny_atlas, ["Cz", "Pz"], cache_dir=tmp_path)
    np.testing.assert_array_equal(cached.gain, lf.gain)


def test_info_montage_matches_names(tiny_atlas, tiny_lf, tmp_path):
    import mne

    info = mne.create_info(["Cz", "Fp1", "O2"], 500.0, "eeg")
    info.set_montage("standard_1005" if "colin27_1005" not in mne.channels.get_builtin_montages()
                     else "colin27_1005")
    label, names, pos, frame = resolve_montage(info)
    _, _, pos_names, _ = resolve_montage(["Cz", "Fp1", "O2"])
    assert names == ["Cz", "Fp1", "O2"] and frame == "fsaverage"
    np.testing.assert_allclose(pos, pos_names, atol=1.0)  # mm


def test_old_names_and_case_are_accepted():
    _, names, pos, _ = resolve_montage(["T3", "fp1", "CZ"])
    _, _, pos_new, _ = resolve_montage(["T7", "Fp1", "Cz"])
    assert names == ["T3", "fp1", "CZ"]
    np.testing.assert_allclose(pos, pos_new)


def test_unknown_channel_names_are_listed_with_suggestions():
    with pytest.raises(ValueError, match=r"'Cxx'.*'PO9x' \(close: PO9"):
        resolve_montage(["Cz", "Cxx", "PO9x"])


def test_unknown_montage_name():
    with pytest.raises(ValueError, match="Invalid montage 'biosemi65'.*Did you mean"):
        resolve_montage("biosemi65")


def test_bad_options(tiny_atlas):
    with pytest.raises(ValueError, match="orientation"):
        make_leadfield(tiny_atlas, ["Cz"], orientation="tangential")
    with pytest.raises(ValueError, match="tvb76 head"):
        make_leadfield(tiny_atlas, "tvb65")
    with pytest.raises(ValueError, match="Duplicate"):
        resolve_montage(["Cz", "cz"])


def test_leadfield_load_rejects_other_files(tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a complete HDF5 file"):
        Leadfield.load(bad)


def test_positions_in_an_unknown_frame_are_fitted(tiny_atlas, tmp_path):
    # the 10-05 positions of 8 channels, rotated, scaled and shifted into some other frame,
    # must land where the names alone put them
    import mne

    from lightbunny.leadfield import _standard_positions

    names = ["Fp1", "Fp2", "C3", "C4", "O1", "O2", "Cz", "T7"]
    table = _standard_positions()
    pos = np.array([table[n] for n in names])
    a = np.deg2rad(30)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    moved = 1.1 * pos @ rot.T + [5.0, -3.0, 40.0]
    dig = mne.channels.make_dig_montage(ch_pos=dict(zip(names, moved / 1000)),
                                        coord_frame="unknown")
    lf_dig = make_leadfield(tiny_atlas, dig, cache_dir=tmp_path)
    lf_names = make_leadfield(tiny_atlas, names, cache_dir=tmp_path)
    np.testing.assert_allclose(lf_dig.ch_pos, lf_names.ch_pos, atol=0.5)  # mm
    np.testing.assert_allclose(lf_dig.gain, lf_names.gain, rtol=1e-3,
                               atol=1e-6 * abs(lf_names.gain).max())


def test_deepsif75_montage_reads_the_data_folder(shared_anatomy, tmp_path):
    atlas = load_atlas("fsaverage994", data_dir=shared_anatomy)
    lf = make_leadfield(atlas, "deepsif75", data_dir=shared_anatomy, cache_dir=tmp_path)
    assert lf.gain.shape == (75, 994) and lf.ch_names[:3] == ("Fp1", "F7", "T7")
    # with the cap read in EEGLAB's head frame and the fsaverage BEM, the rows follow DeepSIF's
    # own BEM leadfield (measured median r 0.935; 0.885 with the old similarity fit + sphere)
    import scipy.io as sio

    ref = sio.loadmat(shared_anatomy / "leadfield_75_20k.mat")["fwd"]
    r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(lf.gain, ref)])
    assert lf.head_model == "bem" and np.median(r) > 0.92 and r.min() > 0.8
    with pytest.raises(FileNotFoundError, match="electrode_75.mat"):
        resolve_montage("deepsif75", data_dir=tmp_path)
