"""The import rules of ARCHITECTURE.md, checked on the source: which stage of the pipeline may import which, the app
on the library's public modules only, and the checkpoint's keys and the progress events' names each in one module.

Each stage of the pipeline is a subpackage of `nesf/` (the interface is the command line and the public facade).
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the pipeline's stages, in order: a stage may import from itself and the stages before it, never after. An entry
# names a package and everything in it, except the top package `nesf`, which names only itself.
STAGES = {
    "foundation": ("nesf.core",),
    "data": ("nesf.data",),
    "model": ("nesf.model",),
    "evaluation": ("nesf.evaluation",),
    "checkpoint": ("nesf.checkpoint",),
    "inference": ("nesf.inference",),
    "training": ("nesf.training",),
    "interface": ("nesf", "nesf.__main__", "nesf.api", "nesf.cli"),
}
TOP = "nesf"
ORDER = list(STAGES)
APP_FORBIDDEN = ("nesf.__main__", "nesf.cli")  # the app uses the library and its facade `nesf.api`, not the CLI
FACADES = ("nesf.api",)                    # re-exports for users; library modules import the implementation
PACKAGE_REEXPORTS = ("nesf.checkpoint",)   # the one stage package whose `__init__` re-exports (checkpoint loading)
NEVER_IN_NESF = ("app", "streamlit", "playwright")

CHECKPOINT_MODULE = ROOT / "nesf" / "checkpoint" / "record.py"
# Files of other formats whose own keys share a name with a checkpoint key (each key listed, so a new use is caught)
OTHER_FORMATS = {
    "nesf/training/crossval.py": {"metrics", "wall_time_s", "epochs", "hardware"},  # a fold's results.json
    "nesf/inference/atlas.py": {"format", "format_version", "dataset"},             # the atlas file
    "nesf/training/trainer.py": {"widened_field_channels"},  # SourceRecord's field, by name, for its constructor
    "app/training_runs.py": {"name", "epochs"},              # a run's run.json / progress history
    "app/ui/training_panel.py": {"epoch"},                   # progress events' rows
    "app/views/model.py": {"epoch"},                         # the loss history's rows
    "benchmarks/bench_map_scale.py": {"name"},               # a Chrome trace's events
    "benchmarks/compare_uploads.py": {"seconds"},            # its own results
    "benchmarks/bench_decode.py": {"metrics"},               # its rows and the paper's figures
}


def checkpoint_keys() -> set[str]:
    """Every key `nesf/checkpoint/record.py` writes or reads: its dict literals' string keys, its string subscripts
    and its `.get` / `.pop` of a string (the payload and the records nested in it)."""
    import ast

    keys = set()
    for node in ast.walk(ast.parse(CHECKPOINT_MODULE.read_text())):
        if isinstance(node, ast.Dict):
            keys |= {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("get", "pop") and node.args
              and isinstance(node.args[0], ast.Constant)):
            keys.add(node.args[0].value)
    return {key for key in keys if isinstance(key, str)}
PROGRESS_MODULE = ROOT / "nesf" / "training" / "progress.py"
SCANNED = ("nesf", "app", "benchmarks", "tools")  # where checkpoint keys and event names must not be spelled


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(*tops: str) -> dict[str, Path]:
    return {module_name(path): path for top in tops for path in sorted((ROOT / top).rglob("*.py"))}


MODULES = source_files("nesf", "app")


def stage_of(module: str) -> str | None:
    """The stage whose longest prefix names `module` (nesf.cli.training: interface); None outside every stage."""
    matches = [(len(prefix), stage) for stage, prefixes in STAGES.items() for prefix in prefixes
               if module == prefix or (prefix != TOP and module.startswith(prefix + "."))]
    return max(matches)[1] if matches else None


def imports(path: Path, source: str | None = None, module: str | None = None) -> list[tuple[str, str, int]]:
    """(module, imported name or "", line) of every import in the file, function-level ones included: relative
    imports resolved against the file's package, and `importlib.import_module("...")` / `__import__("...")` of a
    constant name counted as imports. `source` and `module` stand in for the file's text and name (tests of the
    checker)."""
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule, "", node.lineno) if submodule in MODULES
                             else (base, alias.name, node.lineno))
        elif isinstance(node, ast.Call) and _called_name(node.func) in ("import_module", "__import__") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.append((node.args[0].value, "", node.lineno))
    return found


def _called_name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def late_imports(module: str, path: Path, source: str | None = None) -> list[str]:
    """The imports of `module` from a later stage than its own."""
    rank = ORDER.index(stage_of(module))
    return [f"{module}:{line} imports {target} ({stage_of(target)})"
            for target, _, line in imports(path, source, module)
            if target.split(".")[0] == "nesf" and stage_of(target) and ORDER.index(stage_of(target)) > rank]


def test_every_library_module_is_in_one_stage():
    assert [m for m in MODULES if m.startswith("nesf") and stage_of(m) is None] == []


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("nesf")])
def test_a_stage_imports_only_from_itself_and_the_stages_before_it(module):
    assert late_imports(module, MODULES[module]) == []


@pytest.mark.parametrize("source", [
    "from ..training.trainer import Trainer",                       # relative, against the order
    "from ...nesf import training",
    "import importlib\nimportlib.import_module('nesf.training.trainer')",
    "from importlib import import_module\nimport_module('nesf.cli')",
    "__import__('nesf.training')",
    "def f():\n    from nesf.training import run_spec",               # function-level
])
def test_the_stage_check_catches_every_form_of_a_late_import(source):
    path = MODULES["nesf.model.decode"]
    assert late_imports("nesf.model.decode", path, source) != []
    assert late_imports("nesf.model.decode", path, "from . import fields\nfrom ..core import errors") == []


LIBRARY_THAT_PRINTS = ("nesf.cli", "nesf.__main__")  # the command line writes to the terminal; nothing else does


def prints(source: str) -> list[int]:
    """Lines calling print() in `source`."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print"]


def test_the_library_never_prints():
    """Library code reports through return values, logging and progress callbacks; only the CLI prints."""
    wrong = [f"{module}:{line}" for module, path in MODULES.items() if module.startswith("nesf")
             and not any(module == m or module.startswith(m + ".") for m in LIBRARY_THAT_PRINTS)
             for line in prints(path.read_text())]
    assert wrong == []
    assert prints("def f(x):\n    print(x)") == [2] and prints("def print_table(): pass") == []


def test_the_library_never_imports_the_app_or_a_user_interface():
    wrong = [f"{module}:{line} imports {target}" for module, path in MODULES.items() if module.startswith("nesf")
             for target, _, line in imports(path) if target.split(".")[0] in NEVER_IN_NESF]
    assert wrong == []


def test_the_app_imports_only_public_library_modules():
    wrong = [f"{module}:{line} imports {target}{'.' + name if name else ''}"
             for module, path in MODULES.items() if module.startswith("app")
             for target, name, line in imports(path) if target.split(".")[0] == "nesf"
             and (any(target == f or target.startswith(f + ".") for f in APP_FORBIDDEN) or name.startswith("_")
                  or any(part.startswith("_") for part in target.split(".")))]
    assert wrong == []


def test_each_stage_of_the_library_is_a_package():
    stage_packages = [prefix for stage, prefixes in STAGES.items() if stage != "interface" for prefix in prefixes]
    assert [p for p in stage_packages if not (ROOT / p.replace(".", "/") / "__init__.py").is_file()] == []


def test_library_modules_import_the_implementation_not_the_public_facade():
    wrong = [f"{module}:{line} imports {target}" for module, path in MODULES.items()
             if module.startswith("nesf") and module not in FACADES
             for target, _, line in imports(path) if target in FACADES]
    assert wrong == []


def statements(path: Path) -> list[ast.stmt]:
    """The file's top-level statements after its docstring."""
    body = ast.parse(path.read_text()).body
    docstring = body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    return body[1:] if docstring else body


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("nesf.") and MODULES[m].name == "__init__.py"
                                    and stage_of(m) != "interface"])
def test_a_stage_package_init_holds_its_docstring_only(module):
    """Code lives in the modules; only `nesf.checkpoint` re-exports (checkpoint loading is public API)."""
    body = statements(MODULES[module])
    if module in PACKAGE_REEXPORTS:
        body = [s for s in body if not (isinstance(s, ast.ImportFrom) and s.module.startswith(module + "."))
                and not (isinstance(s, ast.Assign) and [getattr(n, "id", "") for n in s.targets] == ["__all__"])]
    assert [ast.unparse(s)[:80] for s in body] == []


@pytest.mark.parametrize("module", FACADES)
def test_a_facade_only_re_exports(module):
    body = [s for s in statements(MODULES[module])
            if not (isinstance(s, ast.ImportFrom) and stage_of(s.module) not in (None, "interface"))
            and not (isinstance(s, ast.Assign) and [getattr(n, "id", "") for n in s.targets] == ["__all__"])]
    assert [ast.unparse(s)[:80] for s in body] == []


def lines_matching(pattern: re.Pattern, paths, but: Path | None = None) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in paths if path != but
            for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]


def test_only_the_checkpoint_module_reads_checkpoint_keys():
    """The checkpoint's keys are `nesf.checkpoint.record`'s (all of them, read off its source): everyone else uses
    the typed `Checkpoint`; a file of another format whose key shares a name is listed in OTHER_FORMATS, key by key."""
    keys = checkpoint_keys()
    assert {"model_state", "training_state", "optimizer_state", "model_config", "lattice_refit", "split_sizes",
            "init_from", "stored_weights", "vocab", "sha256", "rewarm_steps"} <= keys  # the reading finds them
    pattern = re.compile(r'(\[|\.get\(|\.pop\()\s*["\'](' + "|".join(map(re.escape, sorted(keys))) + r')["\']')
    found = []
    for path in source_files(*SCANNED).values():
        if path == CHECKPOINT_MODULE:
            continue
        allowed = OTHER_FORMATS.get(str(path.relative_to(ROOT)), set())
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(match.group(2) not in allowed for match in pattern.finditer(line)):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_the_checkpoint_key_check_catches_a_key_read_elsewhere(tmp_path):
    keys = checkpoint_keys()
    pattern = re.compile(r'(\[|\.get\(|\.pop\()\s*["\'](' + "|".join(map(re.escape, sorted(keys))) + r')["\']')
    for source in ('payload["model_state"]', "info.get('lattice_refit')", 'state.pop("rewarm_steps", 0)'):
        assert pattern.search(source), source
    assert not pattern.search('row["formula"]') and not pattern.search("payload.model_state")


LABELS_MODULE = ROOT / "nesf" / "checkpoint" / "labels.py"
LABEL_GRAMMAR = re.compile(r'\}\[\{|\}\[:\{|(split|partition)\(["\']\[["\']|["\']\[:?["\'] in |endswith\(f?["\']\[|'
                           r'rstrip\(["\']\]["\']\)')


def test_stored_metrics_labels_are_written_and_parsed_in_one_module():
    """"test[re-uploaded, encoder only]" and its kin are `nesf.checkpoint.labels.MetricsLabel`s: no other module
    builds or takes apart their grammar."""
    assert lines_matching(LABEL_GRAMMAR, source_files(*SCANNED).values(), but=LABELS_MODULE) == []
    for spelled in ('f"{split}[{REUPLOADED}]"', 'f"{split}[:{count}]"', 'label.split("[")[0]', '"[" in label',
                    '"[:" in split', 'label.endswith(f"[{REFINED}]")', 'name.rstrip("]")'):
        assert LABEL_GRAMMAR.search(spelled), spelled
    assert not LABEL_GRAMMAR.search('str(MetricsLabel.reuploaded(split))')


EVENT_KEY = re.compile(r'["\']event["\']\s*:|(\[|\.get\()\s*["\']event["\']')


def test_progress_events_are_read_and_written_in_one_module():
    """Events travel as `nesf.training.progress.Event`s: only progress.py spells the file's keys."""
    assert lines_matching(EVENT_KEY, source_files(*SCANNED).values(), but=PROGRESS_MODULE) == []
    for spelled in ('emit({"event": "done"})', 'if line["event"] == "epoch":', 'kind = event.get("event")',
                    "{'event' : 'start'}"):
        assert EVENT_KEY.search(spelled), spelled
    assert not EVENT_KEY.search('emit(Event(DONE, message="trained"))')


def test_the_app_writes_no_command_line_option():
    """The app starts training through `nesf.training.run_spec.train_command`, not by spelling `nesf train`'s
    options."""
    assert lines_matching(re.compile(r'["\']--[a-z]'), source_files("app").values()) == []
