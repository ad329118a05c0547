"""The fsaverage994 data folder: where it is, what it must hold, and ``lightbunny fetch``.

The DeepSIF anatomy files (:data:`DEEPSIF_FILES`, each pinned to a commit and a sha256) live in
a user data folder (:func:`resolve_data_dir`); :func:`fetch_fsaverage994` downloads them with
pooch. The names are also importable from :mod:`lightbunny.atlas`, where they lived first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ._logging import logger
from .utils import check_option
from .utils import sha256_file as _sha256

DATA_DIR_ENV = "LIGHTBUNNY_DATA"
#: Files of the public DeepSIF repository (github.com/bfinl/DeepSIF, Clear BSD licence), each at
#: the commit that last changed it, with the sha256 of the copy the project was developed with.
DEEPSIF_URL = "https://raw.githubusercontent.com/bfinl/DeepSIF/{commit}/anatomy/{path}"
DEEPSIF_FILES = {
    "connectivity_998.zip": ("763fe7af081b74a4f788c727553e7f70db0cf074",
                             "5491ea0f59cf50061bd45deb417172c77bcccb149f769f2e32021c1ee37058fe"),
    "fs_cortex_20k_region_mapping.mat": ("763fe7af081b74a4f788c727553e7f70db0cf074",
                                         "5d697c7d6b283513f9bd17de439d6b5b3064b42b4db663633b714d74841cf0b9"),
    "fs_cortex_20k.mat": ("763fe7af081b74a4f788c727553e7f70db0cf074",
                          "5727fcb0f4631bed7ea02e1471bf4aefab13695e16c8f55298818b54609408df"),
    "fs_cortex_20k_inflated.mat": ("763fe7af081b74a4f788c727553e7f70db0cf074",
                                   "438e47b0d7779944ed11968bda1cbec7359af666922600df5ba6ba2ab5f0816a"),
    "leadfield_75_20k.mat": ("763fe7af081b74a4f788c727553e7f70db0cf074",
                             "c93f566b46f1de2e6d02d9377221d90a425c8efc57ab07f51132b8905b200e66"),
    "realistic_noise.mat": ("763fe7af081b74a4f788c727553e7f70db0cf074",
                            "07465db65ef749b98733fc69ee1e8a727f81dbebb12a199b3de3931125cce785"),
    "electrode_75.mat": ("f8768a79aac7bb8c90835a8293b55530597908d3",
                         "5b28357423d5d045102260703b67d2614918f095cfe5283212e00a827a988507"),
    "fsaverage5/label/lh.nmm_994.annot": ("4bea4ab8587bb1ce6ab1d97b8813c1f4c9c9dba9",
                                          "90eb4dd90c3ee20f97d5329a64d0e4499099b3fdadbfb030ece7db6139cd570c"),
    "fsaverage5/label/rh.nmm_994.annot": ("4bea4ab8587bb1ce6ab1d97b8813c1f4c9c9dba9",
                                          "a24ee1fd9828118b47ff7830f478d8de43c203d569dbc01f287a0e1e66f05a4b"),
}
#: The files the atlas itself needs; the others are used by later stages (reference leadfield,
#: realistic noise) and are fetched along.
FSAVERAGE994_REQUIRED = ("connectivity_998.zip", "fs_cortex_20k_region_mapping.mat")
#: Copies of the required files vendored in the package (Clear BSD, see its README), so that
#: fsaverage994 works offline without a data folder.
VENDORED_DIR = Path(__file__).parent / "data" / "fsaverage994"


def resolve_data_dir(data_dir=None) -> Path:
    """The fsaverage994 data folder: ``data_dir``, else ``$LIGHTBUNNY_DATA``, else
    ``~/.lightbunny/fsaverage994``."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or Path.home() / ".lightbunny" / "fsaverage994"
    return Path(data_dir).expanduser()


def check_data_dir(data_dir=None, files=FSAVERAGE994_REQUIRED, verify: bool = False) -> Path:
    """Check that ``data_dir`` holds ``files`` (and, with ``verify``, their sha256).

    Raises
    ------
    FileNotFoundError
        Naming the missing files and how to fetch them.
    ValueError
        On a checksum mismatch.
    """
    root = resolve_data_dir(data_dir)
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"The fsaverage994 data folder {root} lacks {', '.join(missing)}. Point --data-dir "
            f"(or ${DATA_DIR_ENV}) at a folder holding the DeepSIF anatomy files, or download "
            f"them with `lightbunny fetch --data-dir {root}` (python: "
            "lightbunny.atlas.fetch_fsaverage994).")
    if verify:
        for f in files:
            got, want = _sha256(root / f), DEEPSIF_FILES[f][1]
            if got != want:
                raise ValueError(f"Checksum mismatch for {root / f}: sha256 {got}, expected "
                                 f"{want}. Delete the file and fetch it again.")
    return root


def fetch_fsaverage994(data_dir=None, url_template: str = DEEPSIF_URL, files=None,
                       overwrite: bool = False, progress: bool = True) -> Path:
    """Download the fsaverage994 anatomy files from the DeepSIF repository and check sha256.

    Parameters
    ----------
    data_dir : path, optional
        Destination (see :func:`resolve_data_dir`).
    url_template : str
        Format string with ``{commit}`` and ``{path}`` fields; defaults to the pinned DeepSIF
        commits on GitHub. A ``file://`` template fetches from a local copy.
    files : sequence of str, optional
        Subset of :data:`DEEPSIF_FILES` (default: all).
    overwrite : bool
        Download again files that are already present with the right checksum.
    progress : bool
        Show a progress bar over the files.

    Returns
    -------
    data_dir : Path

    Files are written atomically; a file whose checksum does not match is not kept.
    """
    from tqdm.auto import tqdm


    root = resolve_data_dir(data_dir)
    names = list(DEEPSIF_FILES) if files is None else list(files)
    for name in names:
        check_option("file", name, DEEPSIF_FILES)
    for name in tqdm(names, desc="fetch fsaverage994", unit="file", disable=not progress):
        commit, sha = DEEPSIF_FILES[name]
        dest = root / name
        if dest.is_file() and not overwrite and _sha256(dest) == sha:
            continue
        _download(url_template.format(commit=commit, path=name), dest, sha)
    return root


def _download(url: str, dest: Path, sha256: str) -> None:
    """Download ``url`` to ``dest`` with pooch, checking its sha256; ``dest`` is written
    atomically, and only when the checksum matches. ``file://`` URLs (a local mirror, which
    pooch does not read) are copied."""
    import pooch

    from .utils import atomic_path

    downloader = _copy_file_url if url.startswith("file:") else pooch.HTTPDownloader(timeout=60)
    logger.info("downloading %s", url)
    pooch_logger = pooch.get_logger()
    level = pooch_logger.level
    pooch_logger.setLevel("WARNING")  # we log the download ourselves
    try:
        with atomic_path(dest) as tmp:
            try:
                pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=tmp.name,
                               path=tmp.parent, downloader=downloader, progressbar=False)
            except OSError as err:  # requests' errors are OSErrors too
                raise FileNotFoundError(f"Could not download {url}: {err}") from err
            except ValueError as err:  # pooch: the download's hash is not the known one
                raise ValueError(f"Checksum mismatch for {url}: expected sha256 {sha256} "
                                 f"({err})") from None
    finally:
        pooch_logger.setLevel(level)


def _copy_file_url(url: str, output_file, pooch_obj=None) -> None:
    """A pooch downloader for ``file://`` URLs."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    shutil.copyfile(url2pathname(urlparse(url).path), output_file)
