"""Realistic head models: the fsaverage BEM, DeepSIF's leadfield, the user's mne.Forward,
perturbations for mismatch studies, and the vendored fsaverage994 files."""

import numpy as np
import pytest

from lightbunny.atlas import load_atlas
from lightbunny.leadfield import (
    PHYSIONET_64,
    default_head_model,
    dipole_gain,
    jitter_electrodes,
    make_leadfield,
    resolve_montage,
)

FOUR = ["Cz", "Fp1", "O2", "T7", "T8", "Pz", "Fz", "Oz", "C3", "C4", "P7", "P8"]


@pytest.fixture(scope="module")
def fsavg():
    # no data folder: the atlas runs on the files vendored in the package
    return load_atlas("fsaverage994", data_dir="/nonexistent-lightbunny-data")


def test_fsaverage994_works_offline_from_vendored_files(fsavg, tmp_path):
    from lightbunny.atlas import DEEPSIF_FILES, VENDORED_DIR, _sha256

    assert fsavg.n_regions == 994 and fsavg.n_vertices == 20484
    assert fsavg.metadata["data_dir"] == str(VENDORED_DIR)
    for name in ("connectivity_998.zip", "fs_cortex_20k_region_mapping.mat"):
        assert _sha256(VENDORED_DIR / name) == DEEPSIF_FILES[name][1]
    assert (VENDORED_DIR / "LICENSE-DeepSIF.txt").read_text().startswith("The Clear BSD License")


def test_cli_atlas_fsaverage994_without_data_dir(capsys, monkeypatch, tmp_path):
    from lightbunny.cli import main

    monkeypatch.setenv("LIGHTBUNNY_DATA", str(tmp_path))  # an empty folder
    assert main(["atlas", "fsaverage994"]) in (0, None)
    out = capsys.readouterr().out
    assert "994 regions" in out and "BEM" in out


def test_bem_surfaces_nest_without_intersections():
    from lightbunny.headmodel import MAX_SKULL_MM, _ray_distance, fsaverage_bem_surfaces

    s = fsaverage_bem_surfaces()
    centre = s["centre"]
    inner, tris = s["inner_skull"]
    outer, tris_o = s["outer_skull"]
    np.testing.assert_array_equal(tris, tris_o)
    r_in = np.linalg.norm(inner - centre, axis=1)
    r_out = np.linalg.norm(outer - centre, axis=1)
    # every outer-skull vertex lies on its inner vertex's ray, further out by the skull thickness
    dirs_in = (inner - centre) / r_in[:, None]
    dirs_out = (outer - centre) / r_out[:, None]
    np.testing.assert_allclose(dirs_in, dirs_out, atol=1e-9)
    np.testing.assert_allclose(r_out - r_in, s["skull_mm"], atol=1e-9)
    assert s["skull_mm"].min() > 2.0 and s["skull_mm"].max() <= MAX_SKULL_MM + 1e-9
    # and inside the scalp along the same ray
    head, head_tris = s["outer_skin"]
    r_head = _ray_distance(centre, dirs_out, head, head_tris)
    assert (r_head - r_out).min() > 2.0
    # moving vertices along their own rays folds nothing new: the triangles that face away from
    # the centre are the same few (13 of 5,120, at the skull base) in both skull surfaces
    back = []
    for rr in (inner, outer):
        a, b, c = rr[tris[:, 0]], rr[tris[:, 1]], rr[tris[:, 2]]
        normal = np.cross(b - a, c - a)
        back.append(np.flatnonzero((normal * ((a + b + c) / 3 - centre)).sum(1) <= 0))
    np.testing.assert_array_equal(back[0], back[1])
    assert len(back[0]) < 0.01 * len(tris)


def test_bem_radial_dipole_under_cz_agrees_with_the_sphere(fsavg):
    # where the head is close to a sphere (the vertex), the BEM and the fitted 4-shell sphere
    # must agree: topography r >= 0.97 and peak amplitude within 20 % (measured: r 0.988,
    # ratio 1.00 at 35 mm depth; 0.970 and 1.07 at 25 mm, where the shapes differ most)
    from lightbunny.leadfield import _sphere_conductor

    _, centre, _, _ = _sphere_conductor(fsavg)
    _, names, pos, _ = resolve_montage("standard_1020_64")
    cz = pos[list(names).index("Cz")]
    radial = (cz - centre) / np.linalg.norm(cz - centre)
    rr = (cz - 35.0 * radial)[None]
    g_bem, names, _ = dipole_gain(fsavg, rr, radial[None], head_model="bem")
    g_sph, _, _ = dipole_gain(fsavg, rr, radial[None], head_model="sphere")
    g_bem, g_sph = g_bem[:, 0] - g_bem[:, 0].mean(), g_sph[:, 0] - g_sph[:, 0].mean()
    assert names[int(np.argmax(g_bem))] == "Cz"
    assert np.corrcoef(g_bem, g_sph)[0, 1] >= 0.97
    assert 0.8 <= np.abs(g_bem).max() / np.abs(g_sph).max() <= 1.25


@pytest.mark.parametrize("side", ["left", "right"])
def test_bem_temporal_dipole_peaks_under_temporal_electrodes(fsavg, side):
    from lightbunny.leadfield import _sphere_conductor

    _, centre, _, _ = _sphere_conductor(fsavg)
    # the most lateral cortex vertex at mid-temporal height, on the chosen side
    v = fsavg.vertices
    band = (v[:, 2] > -25) & (v[:, 2] < -5) & (v[:, 1] > -40) & (v[:, 1] < 0)
    idx = np.flatnonzero(band)
    k = idx[np.argmin(v[idx, 0])] if side == "left" else idx[np.argmax(v[idx, 0])]
    radial = (v[k] - centre) / np.linalg.norm(v[k] - centre)
    rr = (v[k] - 8.0 * radial)[None]  # 8 mm deep, radial: a dipole facing the temporal scalp
    gain, names, ch_pos = dipole_gain(fsavg, rr, radial[None], head_model="bem")
    g = gain[:, 0] - gain[:, 0].mean()
    peak = int(np.argmax(g))
    nearest = np.argsort(np.linalg.norm(ch_pos - rr, axis=1))[:3]
    assert peak in nearest
    near = {"T7", "FT7", "TP7", "T9"} if side == "left" else {"T8", "FT8", "TP8", "T10"}
    assert names[peak] in near


def test_default_head_model_per_atlas(fsavg, tiny_atlas):
    assert default_head_model(fsavg) == "bem"
    assert default_head_model(load_atlas("tvb76")) == "sphere"
    assert default_head_model(tiny_atlas) == "sphere"


def test_bad_head_model_requests(fsavg, tiny_atlas, tmp_path):
    with pytest.raises(ValueError, match="needs an atlas on fsaverage.*head_model='sphere'"):
        make_leadfield(load_atlas("tvb76"), ["Cz", "Pz"], head_model="bem", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="only for montage 'deepsif75'"):
        make_leadfield(fsavg, ["Cz", "Pz"], head_model="deepsif", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="Invalid head_model 'bm'.*Did you mean 'bem'"):
        make_leadfield(tiny_atlas, ["Cz"], head_model="bm")
    with pytest.raises(ValueError, match="skull_conductivity"):
        make_leadfield(tiny_atlas, ["Cz"], skull_conductivity=-1.0)
    with pytest.raises(ValueError, match="jitter_mm"):
        make_leadfield(tiny_atlas, ["Cz"], jitter_mm=float("nan"))


def test_electrode_jitter_has_the_asked_rms_and_stays_on_the_scalp(fsavg, tmp_path):
    from scipy.spatial import cKDTree

    from lightbunny.leadfield import head_surface

    lf = make_leadfield(fsavg, "standard_1020_64", head_model="sphere", cache_dir=tmp_path)
    moved = jitter_electrodes(fsavg, lf.ch_pos, 10.0, seed=3)
    d = np.linalg.norm(moved - lf.ch_pos, axis=1)
    # 64 draws of a 2-D Gaussian with RMS 10 mm: the sample RMS lies within 25 % (p > 0.999)
    assert 7.5 < np.sqrt((d**2).mean()) < 12.5
    verts, _, _ = head_surface(fsavg)
    assert np.median(cKDTree(verts).query(moved)[0]) < 6.0  # back on the scalp mesh
    np.testing.assert_array_equal(moved, jitter_electrodes(fsavg, lf.ch_pos, 10.0, seed=3))
    assert not np.allclose(moved, jitter_electrodes(fsavg, lf.ch_pos, 10.0, seed=4))
    np.testing.assert_array_equal(jitter_electrodes(fsavg, lf.ch_pos, 0.0), lf.ch_pos)


def test_mismatch_leadfields_differ_and_are_recorded(tiny_atlas, tmp_path):
    base = make_leadfield(tiny_atlas, FOUR, cache_dir=tmp_path)
    jit = make_leadfield(tiny_atlas, FOUR, jitter_mm=8.0, jitter_seed=1, cache_dir=tmp_path)
    skull = make_leadfield(tiny_atlas, FOUR, skull_conductivity=0.012, cache_dir=tmp_path)
    assert jit.attrs["jitter_mm"] == 8.0 and not np.allclose(jit.ch_pos, base.ch_pos)
    assert skull.attrs["conductivity_S_per_m"][2] == 0.012
    for lf in (jit, skull):
        assert lf.ch_names == base.ch_names
        r = np.corrcoef(lf.gain.ravel(), base.gain.ravel())[0, 1]
        assert 0.5 < r < 0.99999  # perturbed, not replaced
    # a more conductive skull lets more current reach the scalp
    assert np.abs(skull.gain).sum() > np.abs(base.gain).sum()


# ----------------------------------------------------------------------- the user's mne.Forward


@pytest.fixture(scope="module")
def fsaverage_pial_src(tmp_path_factory):
    """A surface source space on fsaverage (all fsaverage5 pial vertices), built as MNE would
    from a FreeSurfer subjects folder."""
    import mne
    from nilearn import datasets, surface

    sd = tmp_path_factory.mktemp("subjects")
    (sd / "fsaverage" / "surf").mkdir(parents=True)
    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    for hemi, name in (("lh", "left"), ("rh", "right")):
        mesh = surface.load_surf_mesh(fs[f"pial_{name}"])
        mne.write_surface(str(sd / "fsaverage" / "surf" / f"{hemi}.pial"), mesh.coordinates,
                          mesh.faces)
    return mne.setup_source_space("fsaverage", spacing="all", surface="pial", subjects_dir=sd,
                                  add_dist=False, verbose=False)


@pytest.fixture(scope="module")
def sphere_forward(fsavg, fsaverage_pial_src, tmp_path_factory):
    import mne

    from lightbunny.leadfield import _forward_info, _sphere_conductor

    lf = make_leadfield(fsavg, FOUR, head_model="sphere",
                        cache_dir=tmp_path_factory.mktemp("lf"))
    sphere = _sphere_conductor(fsavg)[0]
    fwd = mne.make_forward_solution(_forward_info(FOUR, lf.ch_pos), mne.transforms.Transform(
        "head", "mri"), fsaverage_pial_src, sphere, meg=False, eeg=True, mindist=0.0,
        verbose=False)
    return lf, fwd


def test_forward_reproduces_the_package_leadfield(fsavg, sphere_forward, tmp_path):
    import mne

    lf, fwd = sphere_forward
    got = make_leadfield(fsavg, forward=fwd)
    assert got.ch_names == lf.ch_names and got.head_model == "forward"
    # MNE drops the dipoles outside the inner sphere shell that the package pulls inside: the
    # regions without such vertices must match exactly, the rest closely
    from lightbunny.leadfield import _sphere_conductor

    kept = np.zeros(fsavg.n_vertices, bool)
    kept[np.r_[fwd["src"][0]["vertno"], fwd["src"][1]["vertno"] + 10242]] = True
    _, centre, radius, _ = _sphere_conductor(fsavg)
    pulled = np.linalg.norm(fsavg.vertices - centre, axis=1) > 0.9 * radius * 0.99
    assert pulled.sum() == lf.attrs["n_vertices_pulled_inside"]
    assert 0 < (~kept).sum() <= pulled.sum() and not (~kept & ~pulled).any()
    clean = np.bincount(fsavg.vertex_region[pulled], minlength=fsavg.n_regions) == 0
    np.testing.assert_allclose(got.gain[:, clean], lf.gain[:, clean], rtol=1e-4,
                               atol=1e-6 * np.abs(lf.gain).max())
    r = [np.corrcoef(a, b)[0, 1] for a, b in zip(got.gain, lf.gain)]
    assert min(r) > 0.99
    np.testing.assert_allclose(got.ch_pos, lf.ch_pos, atol=1e-3)
    # the same through a -fwd.fif file and the CLI
    path = tmp_path / "sub-fwd.fif"
    mne.write_forward_solution(path, fwd, verbose=False)
    # (a -fwd.fif file stores the gain in single precision)
    np.testing.assert_allclose(make_leadfield(fsavg, forward=path).gain, got.gain, rtol=1e-4,
                               atol=1e-6 * np.abs(got.gain).max())
    from lightbunny.cli import main

    out = tmp_path / "lf.h5"
    assert main(["leadfield", "--atlas", "fsaverage994", "--forward", str(path), "--out",
                 str(out)]) in (0, None)
    from lightbunny.leadfield import Leadfield

    np.testing.assert_allclose(Leadfield.load(out).gain, got.gain, rtol=1e-4,
                               atol=1e-6 * np.abs(got.gain).max())


def test_forward_fixed_orientation_and_bad_channels(fsavg, sphere_forward):
    import mne

    lf, fwd = sphere_forward
    fixed = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True, verbose=False)
    got = make_leadfield(fsavg, forward=fixed)
    assert got.orientation == "fixed"
    # MNE's own surface normals (from the pial mesh) are close to the atlas normals
    r = [np.corrcoef(a, b)[0, 1] for a, b in zip(got.gain, lf.gain)]
    assert np.median(r) > 0.95
    bad = fwd.copy()
    bad["info"]["bads"] = ["T7", "Oz"]
    got_bad = make_leadfield(fsavg, forward=bad)
    assert got_bad.ch_names == tuple(n for n in FOUR if n not in ("T7", "Oz"))
    np.testing.assert_allclose(got_bad.gain, make_leadfield(fsavg, forward=fwd).gain[
        [FOUR.index(n) for n in got_bad.ch_names]])


def test_bad_forward_inputs(fsavg, sphere_forward, tmp_path):
    import mne

    _, fwd = sphere_forward
    with pytest.raises(FileNotFoundError, match="No forward solution file"):
        make_leadfield(fsavg, forward=tmp_path / "missing-fwd.fif")
    junk = tmp_path / "junk-fwd.fif"
    junk.write_bytes(b"not a fif file")
    with pytest.raises(ValueError, match="not a readable MNE forward"):
        make_leadfield(fsavg, forward=junk)
    with pytest.raises(ValueError, match="must be an mne.Forward"):
        make_leadfield(fsavg, forward=np.zeros((4, 4)))
    # a discrete/volume source space
    vol_src = mne.setup_volume_source_space(pos={"rr": fsavg.vertices[:50] / 1000 * 0.8,
                                                 "nn": fsavg.normals[:50]}, verbose=False)
    from lightbunny.leadfield import _forward_info, _sphere_conductor

    vol_fwd = mne.make_forward_solution(_forward_info(FOUR, make_leadfield(
        fsavg, FOUR, head_model="sphere", cache_dir=tmp_path).ch_pos), mne.transforms.Transform(
        "head", "mri"), vol_src, _sphere_conductor(fsavg)[0], meg=False, eeg=True, verbose=False)
    with pytest.raises(ValueError, match="source space is discrete.*surface source space"):
        make_leadfield(fsavg, forward=vol_fwd)
    # too few good channels
    bad = fwd.copy()
    bad["info"]["bads"] = FOUR[:10]
    with pytest.raises(ValueError, match="2 good EEG channels.*at least 4"):
        make_leadfield(fsavg, forward=bad)
    # no EEG at all (an MEG-only forward)
    meg_only = fwd.copy()
    with meg_only["info"]._unlock():
        for ch in meg_only["info"]["chs"]:
            fiff = mne.io.constants.FIFF
            ch.update(kind=fiff.FIFFV_MEG_CH, unit=fiff.FIFF_UNIT_T,
                      coil_type=fiff.FIFFV_COIL_POINT_MAGNETOMETER)
    with pytest.raises(ValueError, match="no EEG channels"):
        make_leadfield(fsavg, forward=meg_only)
    # a subject other than fsaverage without a subjects folder
    other = fwd.copy()
    other["src"] = fwd["src"].copy()
    for s in other["src"]:
        s["subject_his_id"] = "sub-01"
    with pytest.raises(ValueError, match="subject 'sub-01', not fsaverage.*subjects_dir"):
        make_leadfield(fsavg, forward=other)
    # an atlas that is not on fsaverage5
    with pytest.raises(ValueError, match="not on the fsaverage5 cortex"):
        make_leadfield(load_atlas("tvb76"), forward=fwd)
    with pytest.raises(ValueError, match="do not combine"):
        make_leadfield(fsavg, forward=fwd, head_model="bem")


# ----------------------------------------------------------------------- DeepSIF's leadfield


def test_deepsif_head_model(shared_anatomy, tmp_path):
    atlas = load_atlas("fsaverage994", data_dir=shared_anatomy)
    lf = make_leadfield(atlas, "deepsif75", head_model="deepsif", data_dir=shared_anatomy)
    assert lf.gain.shape == (75, 994) and lf.head_model == "deepsif"
    import shutil

    shutil.copy(shared_anatomy / "electrode_75.mat", tmp_path)  # the cap without the leadfield
    with pytest.raises(FileNotFoundError, match="lacks leadfield_75_20k.mat.*lightbunny fetch"):
        make_leadfield(atlas, "deepsif75", head_model="deepsif", data_dir=tmp_path)


def test_physionet_bem_leadfield_matches_the_published_one(shared_anatomy, tmp_path):
    # the published LightBunny leadfield is an MNE BEM on fsaverage, x+y+z summed
    atlas = load_atlas("fsaverage994", data_dir=shared_anatomy)
    lf = make_leadfield(atlas, list(PHYSIONET_64), orientation="free_sum", cache_dir=tmp_path)
    ref = np.load(shared_anatomy / "leadfield_64_fsaverage_region_lightbunny.npy")
    r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(lf.gain, ref)])
    assert lf.head_model == "bem" and np.median(r) >= 0.985
