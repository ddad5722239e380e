"""The layers of docs/ARCHITECTURE.md hold: no module imports a layer below it (by AST,
module-level and function-level imports alike, so a lazy import cannot hide a circle)."""
import ast
from pathlib import Path

import latentzoo

ROOT = Path(latentzoo.__file__).parent
#: top-level module or package -> its layer (lower numbers are imported by higher ones)
LAYERS = {
    "registry": 0, "_validation": 0, "_spec": 0, "_atomic": 0, "_progress": 0,
    "base": 1, "persistence": 1, "distributed": 1,
    "data": 2, "linear": 2, "neural": 2, "preprocessing": 2, "impute": 2,
    "_impute_search": 2,
    "evaluation": 3, "realism": 3, "experiment": 4, "plots": 5, "report": 5, "cli": 6, "__main__": 6,
}


def _imports(path: Path, package: list[str]):
    """The top-level latentzoo modules that ``path`` (in ``package``) imports."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve against the package
            target = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
        elif isinstance(node, ast.ImportFrom):
            target = (node.module or "").split(".")
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "latentzoo" and len(parts) > 1:
                    yield parts[1]
            continue
        else:
            continue
        if target[0] != "latentzoo":
            continue
        if len(target) > 1:
            yield target[1]
        else:  # "from .. import evaluation": the names are the modules
            yield from (a.name for a in node.names)


def test_no_module_imports_a_layer_above_it():
    present = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert present <= set(LAYERS), f"add the new module to LAYERS and docs/ARCHITECTURE.md: {present - set(LAYERS)}"
    bad = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("").parts  # ("latentzoo", "linear", "ppca")
        if rel == ("latentzoo", "__init__"):
            continue  # the public API re-exports every layer
        package, own = list(rel[:-1]), rel[1]
        for target in _imports(path, package):
            if target in LAYERS and target != own and LAYERS[target] > LAYERS[own]:
                bad.append(f"{'/'.join(rel)}.py imports {target} (layer {LAYERS[target]} > {LAYERS[own]})")
    assert not bad, bad


def test_no_source_file_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these (house rule: files under 400 lines): {long}"
