"""The documentation site: the generated study-file reference covers every setting, in the words of the
configuration's own errors, and the API pages document every public module of the lazy packages."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest

from srnomogram.errors import ConfigError
from srnomogram.study import config

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", DOCS / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()
PAGE = GEN.render()
ROWS = {m.group(1): m.group(2).split(" | ")
        for m in re.finditer(r"^\| `([a-z_]+\.[a-z_]+)` \| (.*) \|$", PAGE, flags=re.M)}


def _fields():
    """Every setting of the study file, read from the dataclasses (not through the generator)."""
    return [(name, f.name) for name, cls in config.SECTIONS.items() for f in dataclasses.fields(cls)]


def test_every_setting_of_the_study_file_has_a_row_with_a_type_a_default_and_a_description():
    fields = _fields()
    assert len(fields) >= 50
    missing = [f"{s}.{k}" for s, k in fields if f"{s}.{k}" not in ROWS]
    assert not missing, f"settings missing from the study-file reference: {missing}"
    assert len(ROWS) == len(fields), sorted(set(ROWS) - {f"{s}.{k}" for s, k in fields})
    empty = [key for key, (what, default, description) in ROWS.items() if not (what and default and description)]
    assert not empty, f"settings without a type, default or description: {empty}"
    # one table per section, in the file's order, each under its heading
    assert re.findall(r"^## `(\w+)`$", PAGE, flags=re.M) == list(config.SECTIONS)


def test_the_reference_states_defaults_as_the_configuration_resolves_them():
    cfg = config.config_from_dict({"cohort": {"manifest": "m.csv"}}).to_dict()
    assert ROWS["validation.folds"][1] == f"`{cfg['validation']['folds']}`" == "`5`"
    assert ROWS["nomogram.dca_range"][1] == "`[0.02, 0.5]`"
    assert ROWS["deep.epochs"][1] == f"`{cfg['deep']['epochs']}`"
    assert ROWS["cohort.clinical"][1] == "`[age, max_diameter_cm]`"
    assert ROWS["split.seed"][1] == "*unset*" and cfg["split"]["seed"] is None


def test_the_value_column_uses_the_words_of_the_configuration_errors():
    """A wrong value's error says what the value must be; the reference says the same for that setting."""
    checked = 0
    for section, key in _fields():
        try:
            raw = {"cohort": {"manifest": "m.csv"}}
            raw.setdefault(section, {})[key] = "ten"  # wrong for every type but a string or a list of strings
            config.config_from_dict(raw)
        except ConfigError as exc:
            head = f"{section}.{key} must be "
            if str(exc).startswith(head):
                words = str(exc)[len(head):].rsplit(". Got ", 1)[0]
                what = ROWS[f"{section}.{key}"][0].removesuffix(", or unset").removesuffix(" (the registered networks)")
                assert what.replace("\\|", "|") == words, key
                checked += 1
    assert checked >= 35, checked


def test_the_study_file_page_is_filled_by_the_hook_declared_in_mkdocs_yml():
    assert GEN.MARKER in (DOCS / "reference" / "study-file.md").read_text(encoding="utf-8")
    assert "docs/hooks.py" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


@pytest.mark.parametrize("package", ["data", "radiomics", "deep", "sr", "study"])
def test_the_api_pages_document_every_module_behind_a_package_s_public_names(package):
    """The packages export their names lazily, which the docs' static reader cannot follow, so the API
    pages name the defining modules: each must be there."""
    import ast

    init = ROOT / "python" / "srnomogram" / package / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    targets = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
               and node.value.startswith(".") and len(node.value) > 1}
    targets |= {"." + n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
    assert targets, package
    api = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "api").glob("*.md"))
    missing = [t for t in sorted(targets) if f"::: srnomogram.{package}{t}" not in api]
    assert not missing, f"API pages do not document {missing}"
