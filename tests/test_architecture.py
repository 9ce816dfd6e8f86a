"""House rules that keep the engine testable without the UI."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_models_never_import_streamlit():
    offenders = [p.name for p in (ROOT / "models").glob("*.py") if "streamlit" in _imports(p)]
    assert offenders == []


def test_models_do_not_import_the_ui_layer():
    offenders = [p.name for p in (ROOT / "models").glob("*.py") if {"ui", "pages"} & _imports(p)]
    assert offenders == []


def test_every_page_is_routed():
    router = (ROOT / "dashboard.py").read_text()
    pages = sorted(p.name for p in (ROOT / "pages").glob("*.py"))
    assert pages and all(f"pages/{name}" in router for name in pages)
