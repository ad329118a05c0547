"""Atlas invariants on the synthetic, embedded (tvb76) and fsaverage994 atlases."""

import hashlib
import shutil

import numpy as np
import pytest

from lightbunny import atlas as atlas_mod
from lightbunny.atlas import (
    FSAVERAGE994_REMAP,
    build_atlas,
    check_data_dir,
    fetch_fsaverage994,
    load_atlas,
    make_synthetic_atlas,
    region_adjacency,
    vertex_normals,
)


def check_invariants(a):
    assert a.vertex_region.shape == (a.n_vertices,)
    # every vertex has a region and every region has vertices
    assert a.vertex_region.min() == 0 and a.vertex_region.max() == a.n_regions - 1
    assert (np.bincount(a.vertex_region, minlength=a.n_regions) > 0).all()
    # adjacency symmetric, no self loops, every region has a neighbour
    assert (a.adjacency == a.adjacency.T).all()
    assert not a.adjacency.diagonal().any()
    assert a.adjacency.any(1).all()
    # distances: non-negative, zero diagonal, symmetric
    assert (a.distances >= 0).all()
    np.testing.assert_allclose(a.distances.diagonal(), 0.0)
    np.testing.assert_allclose(a.distances, a.distances.T)
    # unit normals pointing away from the brain's centre on average
    np.testing.assert_allclose(np.linalg.norm(a.normals, axis=1), 1.0, atol=1e-6)
    outward = ((a.vertices - a.vertices.mean(0)) * a.normals).sum(1)
    assert np.mean(outward > 0) > 0.6
    # connectome
    assert a.weights.shape == a.tract_lengths.shape == (a.n_nodes, a.n_nodes)
    assert (a.tract_lengths >= 0).all()
    # cached arrays are read-only
    with pytest.raises(ValueError):
        a.distances[0, 0] = 1.0


def test_synthetic_atlas_invariants(tiny_atlas):
    check_invariants(tiny_atlas)
    assert tiny_atlas.n_regions == 8
    # adjacent regions are closer than the farthest pairs
    assert tiny_atlas.distances[tiny_atlas.adjacency].max() < tiny_atlas.distances.max()


def test_adjacency_from_mesh_edges():
    # two triangles sharing edge (1, 2); vertex 3 in region 2, vertex 0 in region 0
    tri = np.array([[0, 1, 2], [1, 3, 2]])
    adj = region_adjacency(tri, np.array([0, 1, 1, 2]), 3)
    expected = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], bool)
    np.testing.assert_array_equal(adj, expected)


def test_vertex_normals_of_a_flat_patch():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
    nn = vertex_normals(v, np.array([[0, 1, 2], [1, 3, 2]]))
    np.testing.assert_allclose(nn, np.tile([0, 0, 1.0], (4, 1)))


def test_build_atlas_rejects_empty_region():
    v = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match=r"regions \[1\] own no vertex"):
        build_atlas("x", v, np.array([[0, 1, 2], [1, 2, 3]]), np.array([0, 0, 2, 2]),
                    np.zeros((3, 3)), np.zeros((3, 3)))


def test_extra_nodes_map_to_no_region():
    a = make_synthetic_atlas(n_regions=5, n_vertices=100, n_extra_nodes=2)
    assert a.n_nodes == 7
    np.testing.assert_array_equal(a.node_to_region, [0, 1, 2, 3, 4, -1, -1])


def test_tvb76_embedded_default():
    a = load_atlas("tvb76")
    check_invariants(a)
    assert (a.n_regions, a.n_vertices, a.n_nodes) == (76, 16384, 76)
    # RAS: left-hemisphere regions (names starting with 'l') have negative x
    left = np.array([n.startswith("l") for n in a.region_names])
    assert (a.centres[left, 0] < 0).all() and (a.centres[~left, 0] > 0).all()
    # the brain is longer front-to-back (y) than it is wide (x)
    extent = a.vertices.max(0) - a.vertices.min(0)
    assert extent[1] > extent[0]
    # connectivity_76 row sums (measured median 41.5)
    assert np.median(a.weights.sum(1)) == pytest.approx(41.5, abs=0.5)
    assert load_atlas("tvb76") is a  # cached


def test_unknown_atlas_name_suggests():
    with pytest.raises(ValueError, match="Did you mean 'tvb76'"):
        load_atlas("tvb67")


def test_fsaverage994(shared_anatomy):
    a = load_atlas("fsaverage994", data_dir=shared_anatomy)
    check_invariants(a)
    assert (a.n_regions, a.n_vertices, a.n_nodes) == (994, 20484, 998)
    # the 998 -> 994 remap: the four vertex-less nodes stand for regions 7, 325, 921, 949
    for region, node in FSAVERAGE994_REMAP.items():
        assert a.region_to_node[region] == node
    others = np.setdiff1d(np.arange(994), list(FSAVERAGE994_REMAP))
    np.testing.assert_array_equal(a.region_to_node[others], others)
    assert set(np.flatnonzero(a.node_to_region < 0)) == {7, 325, 921, 949}
    # nilearn's fsaverage5 pial is DeepSIF's cortex, bit for bit
    import scipy.io as sio

    pos = sio.loadmat(shared_anatomy / "fs_cortex_20k.mat")["pos"]
    np.testing.assert_array_equal(a.vertices, pos)
    # left hemisphere first
    assert (a.vertex_hemisphere[:10242] == 0).all() and (a.vertex_hemisphere[10242:] == 1).all()


def test_missing_data_dir_says_how_to_fetch(tmp_path):
    # the atlas itself falls back on the files vendored in the package; the larger files
    # (cap, leadfield, noise) still say how to fetch them
    assert load_atlas("fsaverage994", data_dir=tmp_path).metadata["data_dir"] == str(
        atlas_mod.VENDORED_DIR)
    with pytest.raises(FileNotFoundError, match="lacks realistic_noise.mat.*lightbunny fetch"):
        atlas_mod.check_data_dir(tmp_path, files=("realistic_noise.mat",))


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTBUNNY_DATA", str(tmp_path / "x"))
    assert atlas_mod.resolve_data_dir() == tmp_path / "x"
    assert atlas_mod.resolve_data_dir(tmp_path) == tmp_path


def test_fetcher_from_local_url(shared_anatomy, tmp_path):
    url = shared_anatomy.as_uri() + "/{path}"
    files = ["fs_cortex_20k_region_mapping.mat", "fsaverage5/label/lh.nmm_994.annot"]
    root = fetch_fsaverage994(tmp_path / "data", url_template=url, files=files)
    for f in files:
        assert hashlib.sha256((root / f).read_bytes()).hexdigest() == atlas_mod.DEEPSIF_FILES[f][1]
    # a second call keeps the verified files
    mtime = (root / files[0]).stat().st_mtime_ns
    fetch_fsaverage994(root, url_template=url, files=files)
    assert (root / files[0]).stat().st_mtime_ns == mtime


def test_fetcher_rejects_checksum_mismatch(shared_anatomy, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(shared_anatomy / "realistic_noise.mat", mirror / "electrode_75.mat")  # wrong bytes
    with pytest.raises(ValueError, match="Checksum mismatch"):
        fetch_fsaverage994(tmp_path / "data", url_template=mirror.as_uri() + "/{path}",
                           files=["electrode_75.mat"])
    assert not (tmp_path / "data" / "electrode_75.mat").exists()
    assert not list((tmp_path / "data").glob("*.tmp*"))


def test_fetcher_unreachable_url(tmp_path):
    with pytest.raises(FileNotFoundError, match="Could not download"):
        fetch_fsaverage994(tmp_path, url_template=(tmp_path / "nowhere").as_uri() + "/{path}",
                           files=["electrode_75.mat"])


def test_check_data_dir_verifies_checksums(shared_anatomy, tmp_path):
    check_data_dir(shared_anatomy, verify=True)
    for f in ("connectivity_998.zip", "fs_cortex_20k_region_mapping.mat"):
        shutil.copy(shared_anatomy / f, tmp_path / f)
    (tmp_path / "connectivity_998.zip").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="connectivity_998.zip"):
        check_data_dir(tmp_path, verify=True)
