"""Sphinx configuration of skpercept's documentation site.

Build it (from the repository root, with the ``docs`` extra installed)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Nothing is downloaded while building: no intersphinx inventories, no model weights. The example
gallery (``examples/plot_*.py``) runs on the shipped faces on a CPU; its embeddings land in the
embedding cache, so a second build reuses them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import ClassVar

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import skpercept  # noqa: E402

# The gallery's small fits run fastest on one thread: on two cores that other work shares,
# torch's own threads wait on each other (one fit took 1.8 s on one thread, 11 s on two).
torch.set_num_threads(1)

project = "skpercept"
author = "the skpercept developers"
copyright = "skpercept developers"
release = version = skpercept.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "api_pages",
    "benchmark_tables",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/README.md"]
templates_path = ["_templates"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Every cross-reference inside the project must resolve; names outside it (numpy, torch,
# scikit-learn types) are plain text, since no inventory is downloaded at build time.
# No typographic replacements: benchmark table cells are plain text holding command options and
# parameter values ("--device cuda", batch_size='auto'), which smart quotes and dashes would alter.
smartquotes = False
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!skpercept\b).*")]

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"skpercept {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
}
html_show_sourcelink = False

# The gallery: every script in examples/ is shown; those named plot_*.py also run while the site
# builds (each small: a few hundred faces, the embeddings cached). The others take arguments and
# minutes; they are shown with their text and code, as scikit-learn shows its long examples.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"/_",
    "doc_module": ("skpercept",),
    "backreferences_dir": "api/generated/backreferences",
    "reference_url": {"skpercept": None},
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "download_all_examples": False,
    "show_memory": False,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
}
# SKPERCEPT_DOCS_GALLERY=0 builds the rest of the site without running (or rewriting) the gallery,
# for quick rebuilds while writing the guide.
if os.environ.get("SKPERCEPT_DOCS_GALLERY", "1") == "0":
    extensions.remove("sphinx_gallery.gen_gallery")
    exclude_patterns += ["auto_examples", "sg_execution_times.rst"]
    # ... and without the gallery's pictures and pages that the guide shows and links
    suppress_warnings = [
        "toc.excluded",
        "toc.not_readable",
        "image.not_readable",
        "ref.ref",
        "myst.xref_missing",
    ]


def setup(app):
    if "sphinx_gallery.gen_gallery" not in extensions:
        # the API pages' "examples using this name" lists come from the gallery: without it, none
        from docutils.parsers.rst import Directive

        class NoMinigallery(Directive):
            has_content = True
            optional_arguments = 99
            option_spec: ClassVar[dict] = {"add-heading": str, "heading-level": str}

            def run(self):
                return []

        app.add_directive("minigallery", NoMinigallery)
