"""The import rules of ARCHITECTURE.md, checked on the source: which stage of the pipeline may import which, the app
on the library's public modules only, and the checkpoint's keys and the progress events' names each in one module.

The stages are groups of modules in today's flat `nesf/` layout; when modules move into subpackages, the groups here
become those packages and the rules stay as they are.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the pipeline's stages, in order: a stage may import from itself and the stages before it, never after
STAGES = {
    "foundation": ("nesf.errors", "nesf.atomic", "nesf.device", "nesf.config", "nesf.crystal", "nesf.lattice",
                   "nesf.grids", "nesf.canonical", "nesf.search"),
    "data": ("nesf.structure_io", "nesf.frames", "nesf.hexagonal_set", "nesf.cdvae_csv", "nesf.paper_data",
             "nesf.download", "nesf.datasets"),
    "model": ("nesf.model", "nesf.fields", "nesf.batch", "nesf.sampling", "nesf.schedule", "nesf.nms", "nesf.decode",
              "nesf.model_range", "nesf.latent", "nesf.frame_select"),
    "evaluation": ("nesf.metrics", "nesf.probe"),
    "checkpoint": ("nesf.checkpoint", "nesf.ship", "nesf.run_state"),
    "inference": ("nesf.api", "nesf.uploads", "nesf.trust", "nesf.reupload", "nesf.card", "nesf.atlas",
                  "nesf.decode_anywhere", "nesf.map_filters", "nesf.map_figure", "nesf.chemiscope_export",
                  "nesf.generation"),
    "training": ("nesf.train", "nesf.augment", "nesf.hard_crystals", "nesf.recipes", "nesf.lattice_refit",
                 "nesf.crossval", "nesf.progress", "nesf.options", "nesf.run_spec"),
    "interface": ("nesf", "nesf.__main__", "nesf.cli"),
}
ORDER = list(STAGES)
APP_FORBIDDEN_STAGES = ("interface",)    # the app uses the library, not its command line
NEVER_IN_NESF = ("app", "streamlit", "playwright")

CHECKPOINT_MODULE = ROOT / "nesf" / "checkpoint.py"
CHECKPOINT_KEYS = ("model_state", "training_state", "optimizer_state", "model_config", "train_config",
                   "sampling_config", "decode_config", "bbox_min", "bbox_max", "model_range", "init_from",
                   "lattice_refit", "stored_weights", "best_val_loss", "split_sizes")
PROGRESS_MODULE = ROOT / "nesf" / "progress.py"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(*tops: str) -> dict[str, Path]:
    return {module_name(path): path for top in tops for path in sorted((ROOT / top).rglob("*.py"))}


MODULES = source_files("nesf", "app")


def stage_of(module: str) -> str | None:
    """The stage whose longest prefix names `module` (nesf.cli.training: interface)."""
    matches = [(len(prefix), stage) for stage, prefixes in STAGES.items() for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def imports(path: Path) -> list[tuple[str, str, int]]:
    """(module, imported name or "", line) of every absolute import in the file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule, "", node.lineno) if submodule in MODULES
                             else (node.module, alias.name, node.lineno))
    return found


def test_every_library_module_is_in_one_stage():
    assert [m for m in MODULES if m.startswith("nesf") and stage_of(m) is None] == []


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("nesf")])
def test_a_stage_imports_only_from_itself_and_the_stages_before_it(module):
    rank = ORDER.index(stage_of(module))
    wrong = [f"{module}:{line} imports {target} ({stage_of(target)})"
             for target, _, line in imports(MODULES[module])
             if target.split(".")[0] == "nesf" and ORDER.index(stage_of(target)) > rank]
    assert wrong == []


def test_the_library_never_imports_the_app_or_a_user_interface():
    wrong = [f"{module}:{line} imports {target}" for module, path in MODULES.items() if module.startswith("nesf")
             for target, _, line in imports(path) if target.split(".")[0] in NEVER_IN_NESF]
    assert wrong == []


def test_the_app_imports_only_public_library_modules():
    wrong = [f"{module}:{line} imports {target}{'.' + name if name else ''}"
             for module, path in MODULES.items() if module.startswith("app")
             for target, name, line in imports(path) if target.split(".")[0] == "nesf"
             and (stage_of(target) in APP_FORBIDDEN_STAGES or name.startswith("_")
                  or any(part.startswith("_") for part in target.split(".")))]
    assert wrong == []


def lines_matching(pattern: re.Pattern, paths, but: Path | None = None) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in paths if path != but
            for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]


def test_only_the_checkpoint_module_reads_checkpoint_keys():
    """The checkpoint's keys are `nesf.checkpoint`'s: everyone else uses the typed `Checkpoint`."""
    pattern = re.compile(r'(\[|\.get\(|\.pop\()\s*["\'](' + "|".join(CHECKPOINT_KEYS) + r')["\']')
    assert lines_matching(pattern, source_files("nesf", "app", "benchmarks", "tools").values(), but=CHECKPOINT_MODULE) == []


def test_progress_event_names_are_spelled_in_one_module():
    pattern = re.compile(r'["\']event["\']\s*:\s*["\']|\.get\(["\']event["\']\)\s*(==|in)\s*[("\']')
    assert lines_matching(pattern, source_files("nesf", "app", "benchmarks", "tools").values(), but=PROGRESS_MODULE) == []


def test_the_app_writes_no_command_line_option():
    """The app starts training through `nesf.run_spec.train_command`, not by spelling `nesf train`'s options."""
    assert lines_matching(re.compile(r'["\']--[a-z]'), source_files("app").values()) == []
