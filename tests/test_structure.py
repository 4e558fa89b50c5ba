"""The package's house rules, read from its imports: no cycles, no step imports a step, one CLI
convention, stages that only import the core, their own stage and stages upstream of them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scripts" / "asrsweep"
# Data flows left to right: a module may import the core and stages to its left, never right.
# `experiment` sits with the core under every stage (the index and plan read the registry);
# `results` reads the experiment index to know which runs exist.
LAYERS = ("core", "experiment", "data", "acoustic", "decoding", "rescoring", "results")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def imports(tree: ast.Module) -> set[str]:
    """asrsweep modules imported anywhere in the module (also inside functions)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("asrsweep"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("asrsweep"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def is_step(tree: ast.Module) -> bool:
    """A step (or command) module is one that runs as `python -m`: it has a __main__ block."""
    return any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body)


MODULES = modules()
GRAPH = {name: {m for m in imports(tree) if m in MODULES and m != name} for name, tree in MODULES.items()}
STEPS = {name for name, tree in MODULES.items() if is_step(tree)}


def test_the_package_has_stage_subpackages_and_steps():
    assert {name.split(".")[1] for name in MODULES if name.count(".") >= 1} >= set(LAYERS)
    assert len(STEPS) > 20


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 1:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(name):] + [name]))
        if state.get(name) == 2:
            return
        state[name] = 1
        for target in sorted(GRAPH[name]):
            visit(target, path + [name])
        state[name] = 2

    for name in sorted(GRAPH):
        visit(name, [])


def test_no_step_imports_another_step():
    offenders = sorted(f"{a} imports {b}" for a in STEPS for b in GRAPH[a] if b in STEPS)
    assert not offenders, "move what they share into a library module: " + "; ".join(offenders)


def test_stages_import_only_the_core_and_upstream_stages():
    def layer(name: str) -> int | None:
        parts = name.split(".")
        return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None

    wrong = sorted(f"{a} imports {b}" for a in GRAPH for b in GRAPH[a]
                   if layer(a) is not None and layer(b) is not None and layer(b) > layer(a))
    assert not wrong, "an arrow runs back up the pipeline: " + "; ".join(wrong)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_step_follows_one_cli_convention(name):
    """`run(argv)` does the work; `main(argv)` = cli_main(run, argv); `__main__` calls main()."""
    tree = MODULES[name]
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "run" in functions and "main" in functions, f"{name}: define run(argv) and main(argv)"
    assert "cli_main(run, argv)" in ast.unparse(functions["main"]), f"{name}: main must call cli_main(run, argv)"
    guard = next(node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))
    assert ast.unparse(guard.body) == "main()", f"{name}: the __main__ block must be `main()`"
    assert (ast.get_docstring(tree) or "").startswith(("python -m asrsweep.", "The `asrsweep` command")) or \
        "python -m asrsweep." in (ast.get_docstring(tree) or "").splitlines()[0], \
        f"{name}: the module docstring starts with the command that runs it"


def test_documents_cited_by_the_code_exist():
    """Docstrings and comments once cited a SPEC.md that never existed; every cited .md is here."""
    root = PACKAGE.parents[1]
    cited = set()
    for path in [*PACKAGE.rglob("*.py"), *(root / "workflow").rglob("*.smk"), *(root / "bench").glob("*.py"),
                 root / "Snakefile", root / "Makefile"]:
        cited.update(re.findall(r"[\w/.-]*\w\.md\b", path.read_text()))
    assert cited, "the scan found no citation at all"
    missing = sorted(name for name in cited if not (root / name).exists())
    assert not missing, f"cited but not in the repository: {missing}"


def test_the_checkpoint_path_comment_of_train_smk_is_the_real_one():
    root = PACKAGE.parents[1]
    comment = (root / "workflow" / "rules" / "train.smk").read_text().splitlines()[1]
    code = (root / "workflow" / "rules" / "functions.smk").read_text()
    assert "R/E/checkpoints/train-<key>/" in comment and "`checkpoint_dir` in functions.smk" in comment
    assert 'f"{RESULTS}/{wildcards.exp}/checkpoints/{stage}-{key}"' in code
