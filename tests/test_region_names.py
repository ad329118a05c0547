"""Region names agree with their vertices: the ``l``/``r`` prefix names the hemisphere that the
region's vertices lie in, judged from the mesh alone (each hemisphere is one connected
component), on tvb76 and fsaverage994."""

import numpy as np
import pytest

from lightbunny.atlas import (
    FSAVERAGE994_RENAMED,
    build_atlas,
    hemisphere_name_mismatches,
    load_atlas,
    mesh_hemispheres,
    region_hemispheres,
)


def _two_blobs():
    """Two separate tetrahedra at x = -40 and x = +40 mm, two regions each."""
    tet = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], float)
    verts = np.vstack([tet + [-40, 0, 0], tet + [40, 0, 0]])
    tris = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    tris = np.vstack([tris, tris + 4])
    region = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    w = np.ones((4, 4)) - np.eye(4)
    return verts, tris, region, w


def test_mismatch_detected_by_construction():
    verts, tris, region, w = _two_blobs()
    atlas = build_atlas("blobs", verts, tris, region, w, w,
                        region_names=["lA", "rB", "rC", "lD"])  # B is left, D is right
    assert mesh_hemispheres(atlas).tolist() == [0] * 4 + [1] * 4
    assert region_hemispheres(atlas).tolist() == [0, 0, 1, 1]
    assert hemisphere_name_mismatches(atlas) == {1: ("rB", "left"), 3: ("lD", "right")}
    assert hemisphere_name_mismatches(atlas, ["lA", "lB", "rC", "rD"]) == {}
    assert hemisphere_name_mismatches(atlas, ["lA", "lB", "rC", "D"]) == {3: ("D", "no prefix")}


def test_tvb76_region_names_match_their_vertices():
    atlas = load_atlas("tvb76")
    assert hemisphere_name_mismatches(atlas) == {}
    assert (region_hemispheres(atlas) >= 0).all()  # no region spans both hemispheres


def test_fsaverage994_region_names_match_their_vertices(shared_anatomy):
    atlas = load_atlas("fsaverage994", data_dir=shared_anatomy)
    assert hemisphere_name_mismatches(atlas) == {}
    # the hemisphere of the mesh components is the file order's (left hemisphere first)
    assert np.array_equal(mesh_hemispheres(atlas), atlas.vertex_hemisphere)
    # exactly the two connectome names with a wrong prefix were corrected, and recorded
    renamed = atlas.metadata["renamed_regions"]
    assert {int(k): tuple(v) for k, v in renamed.items()} == FSAVERAGE994_RENAMED
    assert atlas.region_names[958] == "rMT_958" and atlas.region_names[797] == "rIP_797"
    connectome = [atlas.node_names[n] for n in atlas.region_to_node]
    wrong = hemisphere_name_mismatches(atlas, [f"{c}_{k}" for k, c in enumerate(connectome)])
    assert sorted(wrong) == [797, 958]
    assert all(side == "right" for _, side in wrong.values())


@pytest.mark.parametrize("hemi", ["lh", "rh"])
def test_fsaverage994_names_agree_with_deepsif_annotation(shared_anatomy, hemi):
    """DeepSIF's nmm_994 annotation puts each region in the hemisphere its name now says."""
    nib = pytest.importorskip("nibabel")
    atlas = load_atlas("fsaverage994", data_dir=shared_anatomy)
    _, _, names = nib.freesurfer.read_annot(shared_anatomy / "fsaverage5" / "label" /
                                            f"{hemi}.nmm_994.annot")
    regions = {int(n) for n in names if n.decode().isdigit()} & set(range(atlas.n_regions))
    assert len(regions) > 450
    prefixes = {atlas.region_names[r][0] for r in regions}
    assert prefixes == {hemi[0]}
