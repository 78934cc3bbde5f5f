"""The package's shape: commands live in ``ecgaffect.commands``, the library never uses them."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import ecgaffect
from ecgaffect.commands import COMMAND_MODULES

SRC = Path(ecgaffect.__file__).resolve().parent
#: Modules allowed to import the command layer: the commands themselves, the console script
#: and ``python -m ecgaffect``.
FRONT = {"ecgaffect.cli", "ecgaffect.__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST, package: str) -> set[str]:
    """Absolute names of every module an ``import`` statement in ``tree`` names.

    ``package`` is the package the code is in (relative imports start there).
    """
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _library_modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        name = _module_name(path)
        if name in FRONT or name == "ecgaffect.commands" or name.startswith("ecgaffect.commands."):
            continue
        out.append((name, path))
    return out


def test_no_library_module_imports_the_command_layer():
    offenders = []
    for name, path in _library_modules():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _imported(ast.parse(path.read_text(), str(path)), package):
            if imported in ("ecgaffect.cli", "ecgaffect.commands") or imported.startswith(
                ("ecgaffect.commands.", "ecgaffect.cli.")
            ):
                offenders.append(f"{name} imports {imported}")
    assert not offenders, offenders


def test_the_scan_sees_every_import_form():
    tree = ast.parse(
        "import ecgaffect.commands.live\n"
        "from ecgaffect import commands\n"
        "from ..commands import score\n"
        "def f():\n    from ecgaffect.cli import main\n"
    )
    found = _imported(tree, "ecgaffect.model")
    assert {"ecgaffect.commands.live", "ecgaffect.commands", "ecgaffect.commands.score"} <= found
    assert "ecgaffect.cli" in found


def test_every_module_imports():
    have_qt = all(importlib.util.find_spec(m) for m in ("PySide6", "pyqtgraph"))
    names = [m.name for m in pkgutil.walk_packages([str(SRC)], prefix="ecgaffect.")]
    assert "ecgaffect.commands.live" in names
    assert "ecgaffect.stream.factories" in names
    for name in names:
        if name == "ecgaffect.__main__":  # runs the console script on import
            continue
        if name.startswith("ecgaffect.gui.") and not have_qt:
            continue
        importlib.import_module(name)


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_each_command_module_has_register_and_run(name):
    module = importlib.import_module(f"ecgaffect.commands.{name}")
    assert callable(module.register)
    assert callable(module.run)


def test_command_modules_list_every_command_file():
    files = {p.stem for p in (SRC / "commands").glob("*.py") if not p.stem.startswith("_")}
    assert files == set(COMMAND_MODULES)
