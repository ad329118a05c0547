"""The notebooks run top to bottom (every cell that exists must run)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in ROOT.glob("*.ipynb"))


def test_the_four_notebooks_exist():
    assert set(NOTEBOOKS) >= {"main.ipynb", "prep_metadata.ipynb", "prep_leadfield.ipynb",
                              "prep_edf.ipynb"}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("LIGHTBUNNY_CACHE", str(tmp_path / "cache"))
    nb = nbformat.read(ROOT / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
