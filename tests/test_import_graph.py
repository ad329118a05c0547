"""Import structure: no cycle inside lightbunny/simulate/, io does not load leadfield."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIMULATE = ROOT / "lightbunny" / "simulate"


def _imports(path: Path, package: str) -> set:
    """Modules of ``package`` that ``path`` imports anywhere (top level or inside functions);
    ``from . import x`` counts as importing the package itself."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.add(f"{package}.{node.module}" if node.module else package)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith(package):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith(package))
    return out


def test_no_import_cycle_inside_simulate():
    package = "lightbunny.simulate"
    graph = {}
    for path in SIMULATE.glob("*.py"):
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        graph[name] = _imports(path, package) - {name}
    # a submodule importing the package (whose __init__ imports the submodules) is the cycle
    # that lightbunny.simulate.nodes removed
    for name, deps in graph.items():
        if name != package:
            assert package not in deps, f"{name} imports its own package {package}"

    def visit(node, stack):
        assert node not in stack, f"import cycle: {' -> '.join([*stack, node])}"
        for dep in graph.get(node, ()):
            visit(dep, [*stack, node])

    for name in graph:
        visit(name, [])


def test_io_does_not_load_leadfield():
    code = "import sys, lightbunny.io; print('lightbunny.leadfield' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
