"""Classical inverse solutions: contract, errors, sLORETA sanity, and parity with MNE-Python.

The parity tests build a real MNE forward model (3-shell sphere, 32 EEG electrodes of the
10-20 system, a discrete source space at the region centres of a synthetic atlas with
fixed radial orientations), feed its gain matrix to :mod:`lightbunny.inverse` and compare with
``mne.minimum_norm.apply_inverse`` and ``mne.beamformer.make_lcmv`` / ``apply_lcmv``.
"""

import numpy as np
import pytest

from lightbunny import inverse as inv
from lightbunny.atlas import make_synthetic_atlas

CH_NAMES = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
            "P3", "Pz", "P4", "P8", "O1", "Oz", "O2", "FC1", "FC2", "CP1", "CP2", "FC5", "FC6",
            "CP5", "CP6", "AF3", "AF4", "PO3", "PO4"]
RTOL = 1e-6


def _rel_diff(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def sphere_forward():
    """(fwd, info with an average-reference projector, gain) on a 30-region synthetic atlas."""
    mne = pytest.importorskip("mne")
    atlas = make_synthetic_atlas(n_regions=30, n_vertices=600, radius=50.0, seed=0)
    montage_name = ("colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages()
                    else "standard_1020")
    info = mne.create_info(CH_NAMES, 500.0, "eeg")
    info.set_montage(mne.channels.make_standard_montage(montage_name))
    centre = np.array([0.0, 0.0, 0.02])  # the synthetic cortex is centred 20 mm above 0
    sphere = mne.make_sphere_model(r0=centre, head_radius=0.095, info=info, verbose=False)
    rr = atlas.centres / 1000.0
    nn = (rr - centre) / np.linalg.norm(rr - centre, axis=1, keepdims=True)
    src = mne.setup_volume_source_space(pos=dict(rr=rr, nn=nn), verbose=False)
    fwd = mne.make_forward_solution(info, None, src, sphere, eeg=True, meg=False, verbose=False)
    fwd = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True, verbose=False)
    assert fwd["nsource"] == atlas.n_regions
    evoked = mne.EvokedArray(np.zeros((len(CH_NAMES), 2)), info, nave=1, verbose=False)
    evoked.set_eeg_reference(projection=True, verbose=False)
    return fwd, evoked.info, fwd["sol"]["data"].copy()


@pytest.fixture(scope="module")
def eeg_data(sphere_forward):
    """Simulated EEG, shape (n_chans, n_times) as MNE wants it."""
    _, _, gain = sphere_forward
    rng = np.random.default_rng(0)
    sources = rng.standard_normal((gain.shape[1], 300))
    sources[:4] *= 5
    eeg = gain @ sources
    return eeg + 0.1 * eeg.std() * rng.standard_normal(eeg.shape)


def _noise_cov(n, kind):
    if kind == "identity":
        return np.eye(n)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((n, 3 * n))
    return (a @ a.T / (3 * n) + 0.5 * np.eye(n)) * 1e-12  # V², realistic scale


def _mne_cov(mne, data):
    return mne.Covariance(data, CH_NAMES, [], [], nfree=1, verbose=False)


@pytest.mark.parametrize("method", ["MNE", "dSPM", "sLORETA", "eLORETA"])
@pytest.mark.parametrize("snr,cov_kind", [(3.0, "identity"), (1.0, "random")])
def test_minimum_norm_family_matches_mne(sphere_forward, eeg_data, method, snr, cov_kind):
    import mne

    fwd, info, gain = sphere_forward
    noise_cov = _noise_cov(len(CH_NAMES), cov_kind)
    op = mne.minimum_norm.make_inverse_operator(info, fwd, _mne_cov(mne, noise_cov), loose=0.0,
                                                depth=None, fixed=True, verbose=False)
    evoked = mne.EvokedArray(eeg_data, info, nave=1, verbose=False)
    params = dict(eps=1e-10, max_iter=200) if method == "eLORETA" else {}
    stc = mne.minimum_norm.apply_inverse(evoked, op, 1.0 / snr**2, method,
                                         method_params=params or None, verbose=False)
    solver = inv.make_inverse(method, gain, CH_NAMES, snr=snr, noise_cov=noise_cov, **params)
    ours = solver.apply(eeg_data.T)
    assert ours.shape == (eeg_data.shape[1], gain.shape[1])
    diff = _rel_diff(ours.T, stc.data)
    print(f"parity {method} snr={snr} noise_cov={cov_kind}: max rel diff {diff:.2e}")
    assert diff <= RTOL


def test_eloreta_default_options_match_mne(sphere_forward, eeg_data):
    """With MNE's own defaults (eps 1e-6, 20 iterations) both stop at the same iterate."""
    import mne

    fwd, info, gain = sphere_forward
    op = mne.minimum_norm.make_inverse_operator(info, fwd, _mne_cov(mne, np.eye(32)), loose=0.0,
                                                depth=None, fixed=True, verbose=False)
    evoked = mne.EvokedArray(eeg_data, info, nave=1, verbose=False)
    stc = mne.minimum_norm.apply_inverse(evoked, op, 1 / 9, "eLORETA", verbose=False)
    solver = inv.make_inverse("eLORETA", gain, CH_NAMES)
    diff = _rel_diff(solver.apply(eeg_data.T).T, stc.data)
    print(f"parity eLORETA defaults: max rel diff {diff:.2e} ({solver.n_iter} iterations)")
    assert diff <= RTOL


@pytest.mark.parametrize("cov_kind", ["identity", "random"])
def test_lcmv_matches_mne(sphere_forward, eeg_data, cov_kind):
    import mne

    fwd, info, gain = sphere_forward
    data_cov = np.cov(eeg_data)
    noise_cov = _noise_cov(len(CH_NAMES), cov_kind)
    filters = mne.beamformer.make_lcmv(
        info, fwd, mne.Covariance(data_cov, CH_NAMES, [], [], nfree=eeg_data.shape[1] - 1),
        reg=0.05, noise_cov=None if cov_kind == "identity" else _mne_cov(mne, noise_cov),
        verbose=False)
    evoked = mne.EvokedArray(eeg_data, info, nave=1, verbose=False)
    stc = mne.beamformer.apply_lcmv(evoked, filters, verbose=False)
    given = inv.make_inverse("LCMV", gain, CH_NAMES, noise_cov=noise_cov, data_cov=data_cov)
    diff = _rel_diff(given.apply(eeg_data.T).T, stc.data)
    print(f"parity LCMV noise_cov={cov_kind} data_cov given: max rel diff {diff:.2e}")
    assert diff <= RTOL
    # without data_cov, apply() estimates the same sample covariance from the EEG
    estimated = inv.make_inverse("LCMV", gain, CH_NAMES, noise_cov=noise_cov)
    diff = _rel_diff(estimated.apply(eeg_data.T).T, stc.data)
    print(f"parity LCMV noise_cov={cov_kind} data_cov from eeg: max rel diff {diff:.2e}")
    assert diff <= RTOL


# --------------------------------------------------------------------------------------------
# Perfect-data sanity: sLORETA has zero localisation error for a single source
# --------------------------------------------------------------------------------------------


def _single_region_peaks(gain, method="sLORETA", snr=3.0):
    solver = inv.make_inverse(method, gain, snr=snr)
    n_sources = gain.shape[1]
    wave = np.sin(np.linspace(0, np.pi, 50))
    peaks = []
    for r in range(n_sources):
        eeg = np.outer(wave, gain[:, r])  # no noise, one active region
        peaks.append(int(np.argmax(np.mean(solver.apply(eeg) ** 2, axis=0))))
    return np.array(peaks)


@pytest.mark.parametrize("snr", [3.0, 100.0])
def test_sloreta_peak_is_the_true_region_sphere_forward(sphere_forward, snr):
    _, _, gain = sphere_forward
    peaks = _single_region_peaks(gain, snr=snr)
    np.testing.assert_array_equal(peaks, np.arange(gain.shape[1]))


def test_sloreta_peak_is_the_true_region_random_gain():
    gain = np.random.default_rng(3).standard_normal((24, 60))  # more sources than channels
    peaks = _single_region_peaks(gain)
    np.testing.assert_array_equal(peaks, np.arange(60))


def test_minimum_norm_is_not_zero_error_so_the_check_has_teeth(sphere_forward):
    # plain MNE is biased towards superficial sources: it misses some regions, which shows
    # that the sLORETA test above is not trivially satisfied on this forward
    _, _, gain = sphere_forward
    peaks = _single_region_peaks(gain, method="MNE")
    assert (peaks != np.arange(gain.shape[1])).any()


# --------------------------------------------------------------------------------------------
# Contract and errors
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gain():
    return np.random.default_rng(0).standard_normal((16, 12))


def test_registry():
    assert list(inv.INVERSE_METHODS) == ["MNE", "dSPM", "sLORETA", "eLORETA", "LCMV"]
    for name, cls in inv.INVERSE_METHODS.items():
        assert cls.method == name


@pytest.mark.parametrize("method", list(inv.INVERSE_METHODS))
def test_contract(gain, method):
    solver = inv.make_inverse(method, gain)
    assert isinstance(solver, inv.InverseMethod)
    assert solver.ch_names == tuple(f"EEG{k:03d}" for k in range(1, 17))
    eeg = np.random.default_rng(1).standard_normal((40, 16))
    out = solver.apply(eeg)
    assert out.shape == (40, 12) and out.dtype == np.float64
    # average reference: a common offset on all channels changes nothing
    np.testing.assert_allclose(solver.apply(eeg + 3.0), out, atol=1e-10 * np.abs(out).max())
    assert solver.get_config()["method"] == method
    assert method in repr(solver)


def test_kernel_is_read_only_and_linear(gain):
    solver = inv.make_inverse("dSPM", gain)
    assert solver.kernel.shape == (12, 16)
    with pytest.raises(ValueError):
        solver.kernel[0, 0] = 1.0
    eeg = np.random.default_rng(2).standard_normal((5, 16))
    np.testing.assert_allclose(solver.apply(eeg), eeg @ solver.kernel.T)


def test_accepts_a_leadfield_like_object(gain):
    class FakeLeadfield:
        def __init__(self, g):
            self.gain = g
            self.ch_names = tuple(f"C{k}" for k in range(g.shape[0]))

    solver = inv.make_inverse("MNE", FakeLeadfield(gain))
    assert solver.ch_names[0] == "C0"
    np.testing.assert_allclose(solver.kernel, inv.make_inverse("MNE", gain).kernel)


def test_snr_sets_lambda2(gain):
    assert inv.make_inverse("MNE", gain, snr=3.0).lambda2 == pytest.approx(1 / 9)
    with pytest.raises(ValueError, match="snr must be a positive"):
        inv.make_inverse("MNE", gain, snr=0)


def test_method_names_and_unknown_methods(gain):
    assert inv.make_inverse("dspm", gain).method == "dSPM"
    with pytest.raises(ValueError, match=r"Invalid method 'beamformer'\. Allowed: 'MNE', "
                                         r"'dSPM', 'sLORETA', 'eLORETA', 'LCMV'"):
        inv.make_inverse("beamformer", gain)
    with pytest.raises(TypeError, match="MNE does not take reg"):
        inv.make_inverse("MNE", gain, reg=0.1)
    with pytest.raises(ValueError, match="data_cov is used by LCMV only"):
        inv.make_inverse("sLORETA", gain, data_cov=np.eye(16))


def test_shape_errors(gain):
    with pytest.raises(ValueError, match="ch_names has 3 names but gain has 16"):
        inv.make_inverse("MNE", gain, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"gain must have shape \(n_chans, n_sources\)"):
        inv.make_inverse("MNE", gain[0])
    with pytest.raises(ValueError, match="all-zero columns"):
        inv.make_inverse("MNE", np.c_[gain, np.zeros(16)])
    with pytest.raises(ValueError, match=r"noise_cov must have shape \(n_chans, n_chans\)"):
        inv.make_inverse("MNE", gain, noise_cov=np.eye(5))
    with pytest.raises(ValueError, match=r"data_cov must have shape"):
        inv.make_inverse("LCMV", gain, data_cov=np.eye(5))
    solver = inv.make_inverse("MNE", gain)
    with pytest.raises(ValueError, match=r"it looks transposed: pass eeg\.T"):
        solver.apply(np.zeros((16, 40)))
    with pytest.raises(ValueError, match="eeg has 10 channels"):
        solver.apply(np.zeros((40, 10)))
    with pytest.raises(ValueError, match=r"eeg must have shape \(n_times, n_chans\)"):
        solver.apply(np.zeros(16))


def test_lcmv_without_data_cov_has_no_fixed_kernel(gain):
    solver = inv.make_inverse("LCMV", gain)
    with pytest.raises(ValueError, match="LCMV without data_cov"):
        _ = solver.kernel
    with pytest.raises(ValueError, match="at least 2 time samples"):
        solver.apply(np.zeros((1, 16)))


def test_eloreta_reports_convergence(gain):
    solver = inv.make_inverse("eLORETA", gain)
    _ = solver.kernel  # computed on first access
    assert solver.converged and 1 <= solver.n_iter <= 20
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        inv.make_inverse("eLORETA", gain, max_iter=0)
