"""Sphinx configuration: the API reference from the docstrings, and the mathematics page.

Build with ``make docs`` (warnings are errors); the site goes to ``docs/_build`` and is not
committed.
"""

from __future__ import annotations

import stability

project = "stability (sgd-stability)"
author = "the stability developers"
release = stability.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"stability {release}"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports = ["numba"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]
