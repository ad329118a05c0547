"""The README's set-up commands and CI stay in sync."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme.split("## Set up")[1].split("\n## ")[0], re.S)
    assert len(blocks) == 2, "the README must have exactly two set-up commands"
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines()
                if ln and not ln.startswith(("#", "set ", "cd ", "export "))]
    assert ci_lines == [blocks[1].strip()]
    assert "pytest" in blocks[1] and "lightbunny" in blocks[0]
