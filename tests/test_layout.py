"""The layout is the architecture: the imports must follow it.

Read from the source (no module is imported): the pipeline core imports one way (task -> data ->
train -> generate -> score -> record -> leaderboard, each module only the ones before it), nothing
forms a cycle, a function-local import of project code is there only for import cost (and says
so), the report wing never reaches training or data code, and a task imports nothing of the harness
but the sandbox.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("harness", "tasks")

# The pipeline core in import order: each may import only modules listed before it (a module of a
# package counts as its package's entry). The wings (sandbox, build, bench) sit outside this order.
# The order is the architecture's: the settings (standard library), the records, the backbones, the
# data, the resolve step that reads all of them, then training, generation, evaluation and pages.
PIPELINE = [
    "harness.errors",
    "harness.objectives",
    "harness.numerics",
    "harness.recipes",
    "harness.files",
    "harness.environment",
    "harness.provenance",
    "harness.stats",
    "harness.config.checks",
    "harness.config.settings",
    "harness.config.sampling",
    "harness.config.presets",
    "harness.config.commands",
    "harness.config.flags",
    "harness.config.parsers",
    "harness.config",
    "harness.identity",
    "harness.results",
    "harness.gguf",
    "harness.models",
    "harness.data.rows",
    "harness.data.text",
    "harness.data.images",
    "harness.data.encode",
    "harness.resolve",
    "harness.kernels",
    "harness.losses",
    "harness.fused_loss",
    "harness.lora",
    "harness.forward",
    "harness.generate",
    "harness.vllm_engine",
    "harness.score",
    "harness.lmeval_tasks",
    "harness.progress",
    "harness.evaluation",
    "harness.checkpoint",
    "harness.sharding",
    "harness.trainer",
    "harness.probabilities",
    "harness.offline",
    "harness.report.plots",
    "harness.report.paper",
    "harness.report.tables",
    "harness.report.domain",
    "harness.report.ablation",
    "harness.report.continuum",
    "harness.report.replicates",
    "harness.report.index",
    "harness.leaderboard",
    "harness.replicates",
    "harness.plan",
    "harness.launch",
    "harness.scoring",
    "harness.reference",
    "harness.runs",
    "harness.train",
    "harness.evaluate",
    "harness.token_probs",
    "harness.selfgen",
    "harness.lmeval",
    "harness.experiment",
    "harness.ablate",
    "harness.continuum",
]
# Training and data code: what the report wing must not reach, even through another module.
TRAINING_OR_DATA = (
    "harness.trainer",
    "harness.train",
    "harness.checkpoint",
    "harness.sharding",
    "harness.kernels",
    "harness.losses",
    "harness.fused_loss",
    "harness.forward",
    "harness.models",
    "harness.lora",
    "harness.data",
    "harness.generate",
    "harness.vllm_engine",
    "harness.score",
    "harness.lmeval_tasks",
    "harness.lmeval",
    "harness.progress",
    "harness.evaluation",
    "harness.evaluate",
    "harness.offline",
    "harness.selfgen",
    "harness.probabilities",
    "harness.token_probs",
    "harness.plan",
    "harness.launch",
    "harness.scoring",
    "harness.reference",
    "harness.runs",
    "harness.experiment",
    "harness.ablate",
    "harness.continuum",
    "tasks",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PROJECT
        for path in sorted((ROOT / package).rglob("*.py"))
        if "assets" not in path.parts
    }


MODULES = project_modules()


def imported(node: ast.AST, importer: str) -> list[str]:
    """The project modules an import statement names (``from harness import results`` names
    ``harness.results``)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative imports are not used in this project
            raise AssertionError(f"{importer}: relative import")
        base = node.module or ""
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
        ]
    else:
        return []
    return sorted({name for name in names if name.split(".")[0] in PROJECT})


def resolve(name: str) -> str:
    """The module file that ``name`` is: itself, or the package that holds the attribute."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


class Imports(ast.NodeVisitor):
    def __init__(self, module: str, source: str):
        self.module, self.lines = module, source.splitlines()
        self.top: set[str] = set()
        self.external: set[str] = set()  # top-level imports of other packages (their first name)
        self.local: list[
            tuple[int, str, str]
        ] = []  # (line, imported, the statement's text with the line above)
        self.depth = 0

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Import(self, node):
        if not self.depth:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            self.external |= {n.split(".")[0] for n in names if n.split(".")[0] not in PROJECT}
        for name in imported(node, self.module):
            if self.depth:
                # The statement and the line above the block of imports it is in: one comment above a
                # function's imports explains each of them.
                first = node.lineno - 1
                while (
                    first > 0
                    and self.lines[first - 1].strip().startswith(("import ", "from ", ""))
                    and (
                        self.lines[first - 1].strip().startswith(("import ", "from "))
                        or not self.lines[first - 1].strip()
                    )
                ):
                    first -= 1
                text = "\n".join(self.lines[max(0, first - 1) : node.end_lineno])
                self.local.append((node.lineno, resolve(name), text))
            else:
                self.top.add(resolve(name))

    visit_ImportFrom = visit_Import


def read_imports() -> dict[str, Imports]:
    found = {}
    for module, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        visitor = Imports(module, source)
        visitor.visit(ast.parse(source))
        found[module] = visitor
    return found


IMPORTS = read_imports()


def closure(module: str) -> set[str]:
    """Every project module that importing ``module`` loads (top-level imports, followed)."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        for name in IMPORTS[current].top | _parents(current):
            if name not in seen and name in IMPORTS:
                seen.add(name)
                todo.append(name)
    return seen - {module}


def _parents(module: str) -> set[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_every_pipeline_module_exists_and_every_core_module_is_placed():
    assert set(PIPELINE) <= set(MODULES)
    wings = (
        "harness.sandbox",
        "harness.build",
        "harness.bench",
        "harness.report",
        "harness.data",
        "harness.metrics",
    )
    core = {m for m in MODULES if m.startswith("harness.") and not m.startswith(wings)}
    assert core <= set(PIPELINE), f"place these in PIPELINE: {sorted(core - set(PIPELINE))}"


def test_the_pipeline_imports_one_way():
    order = {name: i for i, name in enumerate(PIPELINE)}
    upward = [
        f"{module} imports {name}"
        for module in PIPELINE
        for name in IMPORTS[module].top | {n for _, n, _ in IMPORTS[module].local}
        if name in order and order[name] >= order[module]
    ]
    assert not upward


def test_no_import_cycle():
    # A package's __init__ running before its modules is not a cycle; imports between modules are.
    graph = {m: IMPORTS[m].top | {n for _, n, _ in IMPORTS[m].local} for m in IMPORTS}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    cycles = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph or nxt == node:
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert not cycles


def test_function_local_project_imports_are_there_for_import_cost():
    unexplained = [
        f"{module}:{line} imports {name}"
        for module, visitor in IMPORTS.items()
        for line, name, text in visitor.local
        if "import cost" not in text
    ]
    assert not unexplained


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("harness.report")))
def test_the_report_wing_reaches_no_training_or_data_code(module):
    reached = closure(module) | {n for _, n, _ in IMPORTS[module].local}
    assert not sorted(m for m in reached if m.startswith(TRAINING_OR_DATA))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("tasks")))
def test_tasks_import_only_tasks_and_the_sandbox(module):
    names = IMPORTS[module].top | {n for _, n, _ in IMPORTS[module].local}
    assert not sorted(n for n in names if not n.startswith(("tasks", "harness.sandbox")))


def test_the_sandbox_imports_nothing_of_the_harness_but_itself():
    names = {n for m in MODULES if m.startswith("harness.sandbox") for n in IMPORTS[m].top}
    assert not sorted(n for n in names if not n.startswith("harness.sandbox"))


def test_records_and_leaderboards_load_nothing_but_the_standard_library():
    # Rendering pages must not need torch: the records' layer, the config it reads and the report
    # wing import the standard library only (matplotlib loads when a figure is drawn).
    loaded = closure("harness.leaderboard") | {"harness.leaderboard"}
    assert {"harness.config", "harness.results", "harness.report.domain"} <= loaded
    outside = {m: sorted(IMPORTS[m].external - set(sys.stdlib_module_names) - {"__future__"}) for m in loaded}
    assert not {m: names for m, names in outside.items() if names}


def test_the_checker_sees_a_planted_upward_import_and_a_local_one():
    # The rules above are only as good as the parsing: a planted upward import is found.
    source = "from harness.experiment import run\n\ndef f():\n    from harness.ablate import plan\n"
    visitor = Imports("harness.train", source)
    visitor.visit(ast.parse(source))
    assert visitor.top == {"harness.experiment"}
    assert [(line, name) for line, name, _ in visitor.local] == [(4, "harness.ablate")]
    assert "import cost" not in visitor.local[0][2]


def literal_role_uses(source: str) -> list[tuple[int, str]]:
    """Where ``source`` compares with, looks up or indexes by an objective's or role's name written as
    a string literal (``== "sft"``, ``in ("base", "sft")``, ``methods["sft"]``, ``.get("dft")``)."""
    from harness.objectives import BASE, NAMES

    names = {BASE, *NAMES}

    def named(node) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(named(element) for element in node.elts)
        return False

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(named(n) for n in (node.left, *node.comparators)):
            found.append((node.lineno, "compares"))
        elif isinstance(node, ast.Subscript) and named(node.slice):
            found.append((node.lineno, "indexes by"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and named(node.args[0])
        ):
            found.append((node.lineno, "looks up"))
    return found


def test_roles_and_objectives_are_named_once_not_compared_as_literals():
    # BASE (the untouched backbone) and the baseline and subject objectives (the objectives table's
    # columns) are names in harness.objectives; a module that compared "sft" by hand would not follow
    # a change of the baseline there.
    offenders = [
        f"{module}:{line} {what} a role or objective literal"
        for module, path in MODULES.items()
        if module != "harness.objectives"
        for line, what in literal_role_uses(path.read_text(encoding="utf-8"))
    ]
    assert not offenders


def test_the_role_literal_check_finds_each_kind():
    source = 'a == "sft"\nb in ("base", "x")\nc["dft"]\nd.get("q-family")\ne == "sfts"\n'
    assert literal_role_uses(source) == [(1, "compares"), (2, "compares"), (3, "indexes by"), (4, "looks up")]
