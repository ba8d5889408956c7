"""The study-file reference, generated from the pydantic configuration (srnomogram.study.config),
and the catalogue of a study's pins, generated from its stages (srnomogram.study.stages).

One table per section of the study file: each setting's key, what its value must be (in the words the
configuration's own error messages use), its default and its description, all read from the
dataclasses, so the page cannot drift from the code. ``docs/hooks.py`` puts the tables into
``docs/reference/study-file.md`` when MkDocs builds the site; ``python docs/gen_config_reference.py``
prints them; ``tests/python/test_docs.py`` checks that every setting is there. Likewise the pins table
of ``docs/reference/board.md``: every pin each stage declares (``Stage.pins``) for a study with every
stage switched on.
"""

from __future__ import annotations

import sys
from pathlib import Path

MARKER = "<!-- generated: study-file settings -->"
PINS_MARKER = "<!-- generated: study pins -->"


def _import_config():
    src = Path(__file__).resolve().parents[1] / "python"
    if str(src) not in sys.path:  # this checkout's sources first, as the tests run them
        sys.path.insert(0, str(src))
    from srnomogram.study import config

    return config


def _cell(text: str) -> str:
    """Markdown table cell: no line breaks, no bare pipes."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(value) -> str:
    import yaml

    if value is None:
        return "*unset*"
    if value == "":
        return "*none (required)*"
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()  # a scalar document ends with '...'
    return f"`{text}`"


def _optional(schema: dict) -> bool:
    return any(s.get("type") == "null" for s in schema.get("anyOf", ()))


def sections() -> list[tuple[str, str, list[dict]]]:
    """``[(section, its docstring, [{key, type, default, description}, ...]), ...]`` in the file's order."""
    config = _import_config()
    out = []
    for name, cls in config.SECTIONS.items():
        props = config._schema(name)
        rows = []
        for key, field in cls.__pydantic_fields__.items():
            what = config._describe(config._field_schema(name, key))
            if name == "deep" and key == "archs":  # checked against the network registry when validated
                what = "a list of " + ", ".join(map(repr, config._NETWORKS)) + " (the registered networks)"
            if _optional(props[key]):
                what += ", or unset"
            rows.append({"key": key, "type": what, "default": _default(field.default),
                         "description": field.description or ""})
        out.append((name, " ".join((cls.__doc__ or "").split()), rows))
    return out


def render() -> str:
    """The generated part of the page: one table per section."""
    parts = []
    for name, doc, rows in sections():
        parts.append(f"## `{name}`\n")
        if doc:
            parts.append(doc + "\n")
        parts.append("| key | value | default | description |\n| --- | --- | --- | --- |")
        parts += [f"| `{name}.{r['key']}` | {_cell(r['type'])} | {_cell(r['default'])} | {_cell(r['description'])} |"
                  for r in rows]
        parts.append("")
    return "\n".join(parts)


def render_pins() -> str:
    """Every pin of a study with every stage on (SR, radiomics, both CNNs on OR and SR, repeated splits, subgroups)."""
    config = _import_config()
    from srnomogram.study.pipeline import study_stages

    cfg = config.config_from_dict({"cohort": {"manifest": "manifest.csv"}, "validation": {"repeats": 2},
                                   "study": {"subgroups": ["centre"]}})
    rows = ["| stage | pin | kind | in the report | title |", "| --- | --- | --- | --- | --- |"]
    for stage in study_stages(cfg):
        for pin in stage.pins:
            kind = f"file (`{Path(pin.file).suffix.lstrip('.')}`)" if pin.file else "csv"
            section = f"`{pin.section}`" if pin.section else ""
            rows.append(f"| `{stage.name}` | `{pin.name}` | {kind} | {section} | {_cell(pin.title_for(cfg))} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render())
    print(render_pins())
