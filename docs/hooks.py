"""MkDocs hook: fill the study-file settings and the pins catalogue from the code (docs/gen_config_reference.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

_GEN = Path(__file__).with_name("gen_config_reference.py")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", _GEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_page_markdown(markdown, page, config, files):
    gen = _generator()
    if gen.MARKER in markdown:
        markdown = markdown.replace(gen.MARKER, gen.render())
    if gen.PINS_MARKER in markdown:
        markdown = markdown.replace(gen.PINS_MARKER, gen.render_pins())
    return markdown


# Sphinx roles in the docstrings (:func:`~srnomogram.board.read_pin`), which Markdown renders as the role's
# name before a code span: a cross-reference that autorefs turns into a link where the object is
# documented on the site (optional: plain code elsewhere), shown as Sphinx shows it ('~': the last part).
_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const):<code>(~?)([\w.]+)(\(\))?</code>")


def _role(match):
    short, target, call = match.group(1), match.group(2), match.group(3) or ""
    shown = (target.rsplit(".", 1)[-1] if short else target) + call
    if not target.startswith("srnomogram."):
        return f"<code>{shown}</code>"
    return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'


def on_page_content(html, page, config, files):
    return _ROLE.sub(_role, html)
