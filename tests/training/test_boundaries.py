"""The training core knows no database, Celery or raters; the raters never load torch."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "worker" / "training"
OUTSIDE = ("app", "worker", "simulation", "sqlalchemy", "celery", "kombu", "fastapi")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


def test_the_training_core_imports_only_itself_and_the_ml_libraries():
    reaching_out = {f"{path.name}: {name}" for path in CORE.glob("*.py") for name in imported_modules(path)
                    if name.split(".")[0] in OUTSIDE and not name.startswith("worker.training")}
    assert reaching_out == set()


def test_simulated_raters_and_their_rules_load_without_torch():
    probe = ("import sys, simulation.raters, simulation.rules; "
             "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            cwd=CORE.parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
