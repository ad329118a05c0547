"""Regions described for a reader: hemisphere, coordinates, anatomical label, lobe.

:func:`region_table` gives, for every region of an atlas:

* ``hemisphere``: from the region's vertices (:func:`lightbunny.atlas.region_hemispheres`, each
  hemisphere being one connected component of the mesh), and ``name_ok`` whether the name's
  ``l``/``r`` prefix agrees;
* ``centre_mm``: mean of the region's vertices in the atlas frame (RAS, mm), and
  ``nearest_vertex_mm``: the region's cortex vertex nearest to that centre (the centre of a
  curved region can lie off the cortex);
* for fsaverage994, ``mni305_mm``: fsaverage surface RAS *is* (approximately) MNI305 space,
  fsaverage's Talairach transform being the identity, so it equals ``centre_mm``; and
  ``mni152_mm``: MNI305 mapped to MNI152 with FreeSurfer's published affine
  (:data:`MNI305_TO_MNI152`). tvb76's frame is tvb-data's own (not MNI): no MNI coordinates;
* ``label``: the Desikan-Killiany gyral label for fsaverage994 (its connectome names abbreviate
  the 66 Desikan-Killiany regions: ``lMT_958`` is part of the middle temporal gyrus), the
  Kötter-Wanke regional-map name for tvb76; ``lobe`` after FreeSurfer's lobe grouping of the
  Desikan-Killiany labels (frontal, parietal, temporal, occipital, cingulate, insula);
* ``brodmann`` (fsaverage994 with ``fsaverage5/label/?h.PALS_B12_Brodmann.annot`` in the data
  folder): the Brodmann area covering most of the region's vertices (PALS-B12 atlas), with the
  fraction of vertices it covers.

The abbreviation tables below are written for this package from the standard region
definitions (they copy no file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._logging import logger

#: FreeSurfer's MNI305 -> MNI152 affine (mm), from the FreeSurfer documentation
#: ("CoordinateSystems": the 12-parameter transform between the two MNI templates).
MNI305_TO_MNI152 = np.array([[0.9975, -0.0073, 0.0176, -0.0429],
                             [0.0146, 1.0009, -0.0024, 1.5496],
                             [-0.0130, -0.0093, 0.9971, 1.1840]])

#: Desikan-Killiany regions, as abbreviated in the 998-node connectome names (Hagmann et al.
#: 2008): abbreviation -> (FreeSurfer label, lobe).
DK_ABBREVIATIONS = {
    "BSTS": ("bankssts", "temporal"), "CAC": ("caudalanteriorcingulate", "cingulate"),
    "CMF": ("caudalmiddlefrontal", "frontal"), "CUN": ("cuneus", "occipital"),
    "ENT": ("entorhinal", "temporal"), "FP": ("frontalpole", "frontal"),
    "FUS": ("fusiform", "temporal"), "IP": ("inferiorparietal", "parietal"),
    "ISTC": ("isthmuscingulate", "cingulate"), "IT": ("inferiortemporal", "temporal"),
    "LING": ("lingual", "occipital"), "LOCC": ("lateraloccipital", "occipital"),
    "LOF": ("lateralorbitofrontal", "frontal"), "MOF": ("medialorbitofrontal", "frontal"),
    "MT": ("middletemporal", "temporal"), "PARC": ("paracentral", "frontal"),
    "PARH": ("parahippocampal", "temporal"), "PC": ("posteriorcingulate", "cingulate"),
    "PCAL": ("pericalcarine", "occipital"), "PCUN": ("precuneus", "parietal"),
    "POPE": ("parsopercularis", "frontal"), "PORB": ("parsorbitalis", "frontal"),
    "PREC": ("precentral", "frontal"), "PSTC": ("postcentral", "parietal"),
    "PTRI": ("parstriangularis", "frontal"), "RAC": ("rostralanteriorcingulate", "cingulate"),
    "RMF": ("rostralmiddlefrontal", "frontal"), "SF": ("superiorfrontal", "frontal"),
    "SMAR": ("supramarginal", "parietal"), "SP": ("superiorparietal", "parietal"),
    "ST": ("superiortemporal", "temporal"), "TP": ("temporalpole", "temporal"),
    "TT": ("transversetemporal", "temporal"), "INS": ("insula", "insula"),
}

#: tvb76's regions (Kötter & Wanke 2005 regional map): abbreviation -> (name, lobe).
TVB76_ABBREVIATIONS = {
    "A1": ("primary auditory cortex", "temporal"), "A2": ("secondary auditory cortex", "temporal"),
    "AMYG": ("amygdala", "temporal"), "CCA": ("anterior cingulate cortex", "cingulate"),
    "CCP": ("posterior cingulate cortex", "cingulate"),
    "CCR": ("retrosplenial cingulate cortex", "cingulate"),
    "CCS": ("subgenual cingulate cortex", "cingulate"), "FEF": ("frontal eye field", "frontal"),
    "G": ("gustatory cortex", "insula"), "HC": ("hippocampus", "temporal"),
    "IA": ("anterior insula", "insula"), "IP": ("posterior insula", "insula"),
    "M1": ("primary motor cortex", "frontal"), "PCI": ("inferior parietal cortex", "parietal"),
    "PCIP": ("intraparietal sulcus cortex", "parietal"),
    "PCM": ("medial parietal cortex", "parietal"), "PCS": ("superior parietal cortex", "parietal"),
    "PFCCL": ("centrolateral prefrontal cortex", "frontal"),
    "PFCDL": ("dorsolateral prefrontal cortex", "frontal"),
    "PFCDM": ("dorsomedial prefrontal cortex", "frontal"),
    "PFCM": ("medial prefrontal cortex", "frontal"),
    "PFCORB": ("orbital prefrontal cortex", "frontal"),
    "PFCPOL": ("prefrontal polar cortex", "frontal"),
    "PFCVL": ("ventrolateral prefrontal cortex", "frontal"),
    "PHC": ("parahippocampal cortex", "temporal"),
    "PMCDL": ("dorsolateral premotor cortex", "frontal"),
    "PMCM": ("medial premotor cortex", "frontal"),
    "PMCVL": ("ventrolateral premotor cortex", "frontal"),
    "S1": ("primary somatosensory cortex", "parietal"),
    "S2": ("secondary somatosensory cortex", "parietal"),
    "TCC": ("central temporal cortex", "temporal"), "TCI": ("inferior temporal cortex", "temporal"),
    "TCPOL": ("temporal pole", "temporal"), "TCS": ("superior temporal cortex", "temporal"),
    "TCV": ("ventral temporal cortex", "temporal"), "V1": ("primary visual cortex", "occipital"),
    "V2": ("secondary visual cortex", "occipital"),
    "CC": ("CC (abbreviation of connectivity_76, not expanded)", "unknown"),
}


def _abbreviation(name: str) -> str:
    base = name.split("_")[0]
    return base[1:] if base[:1] in ("l", "r") and base[1:2].isupper() else base


def mni305_to_mni152(xyz) -> np.ndarray:
    """Map MNI305 coordinates (mm, shape (..., 3)) to MNI152 with :data:`MNI305_TO_MNI152`.

    Examples
    --------
    >>> mni305_to_mni152([0.0, 0.0, 0.0]).round(2).tolist()
    [-0.04, 1.55, 1.18]
    """
    xyz = np.asarray(xyz, dtype=float)
    return xyz @ MNI305_TO_MNI152[:, :3].T + MNI305_TO_MNI152[:, 3]


def _brodmann(atlas) -> dict:
    """Region -> (Brodmann label, fraction of its vertices) from PALS-B12, or {} if absent."""
    root = atlas.metadata.get("data_dir")
    if atlas.name != "fsaverage994" or not root:
        return {}
    files = [Path(root) / "fsaverage5" / "label" / f"{h}.PALS_B12_Brodmann.annot"
             for h in ("lh", "rh")]
    if not all(f.is_file() for f in files):
        return {}
    import nibabel as nib

    labels = []
    for f in files:
        lab, _, names = nib.freesurfer.read_annot(str(f))
        names = [n.decode() for n in names]
        labels.extend(names[i] if i >= 0 else "???" for i in lab)
    if len(labels) != atlas.n_vertices:
        logger.warning("PALS_B12_Brodmann annotations have %d vertices, atlas %d; not used",
                       len(labels), atlas.n_vertices)
        return {}
    labels = np.asarray(labels)
    out = {}
    for r in range(atlas.n_regions):
        lab = labels[atlas.vertex_region == r]
        ba = lab[np.char.startswith(lab.astype(str), "Brodmann.")]
        if len(ba):
            values, counts = np.unique(ba, return_counts=True)
            k = int(np.argmax(counts))
            out[r] = (values[k].replace("Brodmann.", "BA "), float(counts[k] / len(lab)))
    return out


_TABLES: dict = {}


def region_table(atlas) -> list:
    """One dict per region (see the module docstring), cached per atlas object."""
    from .atlas import region_hemispheres

    key = id(atlas)
    if key in _TABLES and _TABLES[key][0] is atlas:
        return _TABLES[key][1]
    try:
        hemi = region_hemispheres(atlas)
    except ValueError as err:  # not two separate hemispheres (e.g. a synthetic sphere)
        logger.info("%s; hemispheres taken from atlas.vertex_hemisphere", err)
        vh = np.asarray(atlas.vertex_hemisphere)
        hemi = np.array([np.unique(vh[atlas.vertex_region == r])[0]
                         if len(np.unique(vh[atlas.vertex_region == r])) == 1 else -1
                         for r in range(atlas.n_regions)], dtype=np.int8)
    table = DK_ABBREVIATIONS if atlas.name == "fsaverage994" else \
        TVB76_ABBREVIATIONS if atlas.name == "tvb76" else {}
    brodmann = _brodmann(atlas)
    rows = []
    for r, name in enumerate(atlas.region_names):
        verts = atlas.vertices[atlas.vertex_region == r]
        centre = atlas.centres[r]
        nearest = verts[np.argmin(((verts - centre) ** 2).sum(1))] if len(verts) else centre
        side = {0: "left", 1: "right"}.get(int(hemi[r]), "both")
        label, lobe = table.get(_abbreviation(name), ("", "unknown"))
        row = {"index": r, "name": name, "hemisphere": side,
               "name_ok": name[:1] == side[:1] if side != "both" else False,
               "label": label, "lobe": lobe,
               "centre_mm": [round(float(v), 1) for v in centre],
               "nearest_vertex_mm": [round(float(v), 1) for v in nearest]}
        if atlas.name == "fsaverage994":
            row["mni305_mm"] = row["centre_mm"]
            row["mni152_mm"] = [round(float(v), 1) for v in mni305_to_mni152(centre)]
        if r in brodmann:
            row["brodmann"], row["brodmann_fraction"] = brodmann[r][0], round(brodmann[r][1], 2)
        rows.append(row)
    _TABLES[key] = (atlas, rows)
    return rows


def coordinate_note(atlas) -> str:
    """One sentence saying what the coordinates of :func:`region_table` are."""
    if atlas.name == "fsaverage994":
        return ("Coordinates: fsaverage surface RAS (mm), which is approximately MNI305 space "
                "(fsaverage's Talairach transform is the identity); MNI152 by FreeSurfer's "
                "MNI305-to-MNI152 affine. Region centre = mean of its vertices.")
    return (f"Coordinates: atlas {atlas.name} frame, RAS mm ({atlas.metadata.get('frame', '')}); "
            f"not MNI. Region centre = mean of its vertices.")


__all__ = ["MNI305_TO_MNI152", "DK_ABBREVIATIONS", "TVB76_ABBREVIATIONS", "mni305_to_mni152",
           "region_table", "coordinate_note"]
