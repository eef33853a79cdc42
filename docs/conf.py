"""Sphinx configuration of the bert-serving docs: `make docs` builds them with warnings as errors."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / '_ext'))

from bert_serving.server.version import __version__  # noqa: E402

project = 'bert-serving'
author = 'bert-serving contributors'
copyright = 'bert-serving contributors, MIT licence'
release = version = __version__

extensions = ['myst_parser', 'sphinx.ext.autodoc', 'generated']
source_suffix = {'.md': 'markdown'}
exclude_patterns = ['_build', '_ext']
myst_enable_extensions = ['colon_fence']
myst_heading_anchors = 3

autodoc_member_order = 'bysource'
autoclass_content = 'both'  # the class docstring and __init__'s (its parameters)

html_theme = 'alabaster'
html_title = f'bert-serving {version}'
