"""One HDF5 convention (utils.write_h5_attrs / read_h5_attrs / open_h5_format) for the
leadfield, sources, spike bank and imaging-result files; files written the old way still load.

The ``_old_*`` writers are the writers of lightbunny 0.1 (commit 5087240), copied here.
"""

import json

import h5py
import numpy as np
import pytest

from lightbunny.utils import H5_FORMAT_ATTRS, open_h5_format, read_h5_attrs, write_h5_attrs


def _convention(path, fmt, version):
    with h5py.File(path, "r") as f:
        assert set(f.attrs) == set(H5_FORMAT_ATTRS)
        assert f.attrs["format"] == fmt and f.attrs["format_version"] == version
        return json.loads(f.attrs["meta"])


def test_helper_round_trip_and_errors(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        write_h5_attrs(f, "lightbunny-x", 3, {"n": np.int64(4), "v": np.arange(2.0), "p": tmp_path})
    with open_h5_format(path, "lightbunny-x", what="x file", max_version=3) as f:
        assert read_h5_attrs(f) == {"n": 4, "v": [0.0, 1.0], "p": str(tmp_path)}
    with pytest.raises(ValueError, match=r"is not a y file \(format attribute 'lightbunny-x', "
                                         r"expected 'lightbunny-y'\)"):
        open_h5_format(path, "lightbunny-y", what="y file")
    with pytest.raises(ValueError, match="format version 3; this lightbunny reads up to version 2"):
        open_h5_format(path, "lightbunny-x", max_version=2)
    with pytest.raises(FileNotFoundError, match="no x file at"):
        open_h5_format(tmp_path / "none.h5", "lightbunny-x", what="x file")
    (tmp_path / "junk.h5").write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match="not a complete HDF5 file"):
        open_h5_format(tmp_path / "junk.h5", "lightbunny-x")
    unmarked = tmp_path / "old.h5"
    with h5py.File(unmarked, "w") as f:
        f.attrs["a"] = json.dumps([1, 2])
        f.attrs["b"] = np.float32(2.5)
        f.attrs["c"] = json.dumps({"k": 1})
        f.attrs["c__json"] = True
    with pytest.raises(ValueError, match="format attribute ''"):
        open_h5_format(unmarked, "lightbunny-x")
    with open_h5_format(unmarked, "lightbunny-x", legacy=lambda f: "a" in f.attrs) as f:
        assert read_h5_attrs(f, json_keys=("a",)) == {"a": [1, 2], "b": 2.5, "c": {"k": 1}}


# ------------------------------------------------------------------------------ leadfield
def _old_leadfield_save(lf, path):
    with h5py.File(path, "w") as f:
        f.create_dataset("gain", data=lf.gain)
        f.create_dataset("ch_pos", data=lf.ch_pos)
        f.attrs["ch_names"] = json.dumps(list(lf.ch_names))
        for key in ("atlas_name", "montage", "head_model", "orientation"):
            f.attrs[key] = getattr(lf, key)
        f.attrs["attrs"] = json.dumps(lf.attrs, default=str)
        f.attrs["units"] = "gain: V/(A*m), unreferenced; ch_pos: mm, atlas frame (RAS)"


def _same_leadfield(a, b):
    np.testing.assert_array_equal(a.gain, b.gain)
    np.testing.assert_array_equal(a.ch_pos, b.ch_pos)
    for key in ("ch_names", "atlas_name", "montage", "head_model", "orientation", "attrs"):
        assert getattr(a, key) == getattr(b, key), key


def test_leadfield_new_and_old_files(tmp_path):
    from lightbunny.leadfield import LEADFIELD_FORMAT, Leadfield

    rng = np.random.default_rng(0)
    lf = Leadfield(gain=rng.normal(size=(3, 4)), ch_names=("Cz", "Pz", "Fz"), atlas_name="toy",
                   montage="three", head_model="sphere", orientation="normal",
                   ch_pos=rng.normal(size=(3, 3)), attrs={"jitter_mm": 0.0, "radii": [1, 2]})
    meta = _convention(lf.save(tmp_path / "new.h5"), LEADFIELD_FORMAT, 2)
    assert meta["atlas_name"] == "toy" and meta["ch_names"] == ["Cz", "Pz", "Fz"]
    _same_leadfield(Leadfield.load(tmp_path / "new.h5"), lf)
    _old_leadfield_save(lf, tmp_path / "old.h5")
    _same_leadfield(Leadfield.load(tmp_path / "old.h5"), lf)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("gain", data=np.zeros(2))
    with pytest.raises(ValueError, match="not a LightBunny leadfield file"):
        Leadfield.load(tmp_path / "other.h5")


# ------------------------------------------------------------------------------ sources
def _old_sources_save(src, path):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "lightbunny-sources"
        f.attrs["format_version"] = 1
        for key, value in src.attrs.items():
            if isinstance(value, (dict, list, tuple)):
                f.attrs[key] = json.dumps(value)
                f.attrs[f"{key}__json"] = True
            else:
                f.attrs[key] = value
        for name in ("centres", "offsets", "regions", "weights", "half_distance", "n_layers"):
            f.create_dataset(name, data=getattr(src, name))


def test_sources_new_and_old_files(tmp_path):
    from lightbunny.atlas import make_synthetic_atlas
    from lightbunny.sources import SOURCES_FORMAT, Sources

    atlas = make_synthetic_atlas(n_regions=6)
    src = Sources.from_patches([[[0, 1]], [[3]]], atlas=atlas, split="val",
                               attrs={"seed": 7, "versions": {"numpy": "1"}})
    meta = _convention(src.save(tmp_path / "new.h5"), SOURCES_FORMAT, 2)
    assert meta["split"] == "val" and meta["seed"] == 7
    _old_sources_save(src, tmp_path / "old.h5")
    for name in ("new.h5", "old.h5"):
        back = Sources.load(tmp_path / name)
        assert back.attrs == json.loads(json.dumps(src.attrs)), name
        for key in ("centres", "offsets", "regions", "weights", "half_distance", "n_layers"):
            np.testing.assert_array_equal(getattr(back, key), getattr(src, key))


# ------------------------------------------------------------------------------ spike bank
def _old_bank_index(path, meta_attrs, regions_from):
    """Rewrite the index of a bank the way lightbunny 0.1 wrote it (same region links)."""
    with h5py.File(regions_from, "r") as src:
        links = {k: src["regions"].get(k, getlink=True) for k in src["regions"]}
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "lightbunny-spikebank"
        f.attrs["format_version"] = 1
        f.attrs["atlas_name"] = "synthetic"
        f.attrs["sfreq"] = 500.0
        f.attrs["n_times"] = 20
        f.attrs["n_regions"] = 3
        f.attrs["attrs_json"] = json.dumps(meta_attrs, sort_keys=True)
        grp = f.create_group("regions")
        for k, link in links.items():
            grp[k] = h5py.ExternalLink(link.filename, link.path)


def test_spike_bank_new_and_old_files(tmp_path):
    from lightbunny.spikes import BANK_FORMAT, SpikeBank, SpikeBankWriter

    attrs = {"seed": 3, "config": {"a": 1}}
    w = SpikeBankWriter(tmp_path / "bank.h5", atlas_name="synthetic", sfreq=500.0, n_times=20,
                        n_regions=3, attrs=attrs, storage_dtype="float32")
    clips = np.random.default_rng(0).normal(size=(2, 20, 3)).astype(np.float32)
    w.write_region(1, clips, [5, 9], n_spikes=2, alpha=1.5)
    meta = _convention(tmp_path / "bank.h5", BANK_FORMAT, 2)
    assert meta["attrs"]["seed"] == 3 and meta["n_regions"] == 3
    new = SpikeBank.open(tmp_path / "bank.h5")
    old_attrs = json.loads(json.dumps({**attrs, "summary": w.summary()}))
    _old_bank_index(tmp_path / "old.h5", old_attrs, tmp_path / "bank.h5")
    (tmp_path / "old.h5.d").symlink_to(tmp_path / "bank.h5.d")
    old = SpikeBank.open(tmp_path / "old.h5")
    for bank in (new, old):
        assert (bank.atlas_name, bank.sfreq, bank.n_times, bank.n_regions) == ("synthetic", 500.0,
                                                                                20, 3)
        assert bank.attrs["seed"] == 3 and bank.attrs["config"] == {"a": 1}
        np.testing.assert_array_equal(bank.clips(1), clips)
    # a run resumed on a bank of the old format finds its regions and rewrites the index
    again = SpikeBankWriter(tmp_path / "old.h5", atlas_name="synthetic", sfreq=500.0, n_times=20,
                            n_regions=3, attrs=attrs)
    assert again.complete_regions() == {1}
    with pytest.raises(ValueError, match="n_times=20, not 30"):
        SpikeBankWriter(tmp_path / "old.h5", atlas_name="synthetic", sfreq=500.0, n_times=30,
                        n_regions=3, attrs=attrs)


# ------------------------------------------------------------------------------ imaging result
def test_imaging_result_new_and_old_files(tmp_path):
    from types import SimpleNamespace

    from lightbunny.apply import RESULT_FORMAT, ImagingResult, load_result

    report = SimpleNamespace(to_dict=lambda: {"interpolated": ["Cz"]})
    prepared = SimpleNamespace(eeg=np.ones((4, 2)), sfreq=100.0, tmin=0.0, times=np.arange(4) / 100,
                               kind="raw", n_averaged=1, source="rec.edf", ch_names=["Cz", "Pz"],
                               report=report)
    res = ImagingResult(source=np.arange(12.0).reshape(4, 3), prepared=prepared,
                        model={"name": "sLORETA", "kind": "classical",
                               "atlas_name": "toy"}, units="a.u.")
    res.save(tmp_path / "new", figures=False)
    meta = _convention(tmp_path / "new" / "sources.h5", RESULT_FORMAT, 2)
    assert meta["model"]["name"] == "sLORETA" and meta["region_names"][0] == "region_000"
    # lightbunny 0.1: no format marker, every entry an attribute, dicts and lists as JSON text
    with h5py.File(tmp_path / "old.h5", "w") as f:
        for key in ("source", "times", "eeg", "region_power"):
            f.create_dataset(key, data=res.region_power() if key == "region_power" else
                             {"source": res.source, "times": res.times, "eeg": prepared.eeg}[key])
        for key, value in res.attrs().items():
            f.attrs[key] = json.dumps(value, default=str) if isinstance(value, (dict, list)) \
                else value
        f.attrs["region_names"] = json.dumps([f"region_{i:03d}" for i in range(3)])
        f.attrs["layout"] = meta["layout"]
    new, old = load_result(tmp_path / "new" / "sources.h5"), load_result(tmp_path / "old.h5")
    for key in ("source", "times", "eeg", "region_power"):
        np.testing.assert_array_equal(new[key], old[key])
    assert new["meta"] == old["meta"]
