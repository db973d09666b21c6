"""Paper-style diagrams of a spec, as Graphviz DOT: the network's overview and each block's
schematic. Drawing needs the IR only (no torch); laying out needs the ``dot`` program, except for
the DOT text itself.
"""

from __future__ import annotations

from .block import BlockNotDrawable, block_names, called_blocks, draw_block, find_block
from .diagram import Diagram
from .figure import RANKDIRS, DrawOptions
from .overview import draw_overview
from .render import FORMATS, INSTALL_HINT, RenderError, find_dot, format_of, write_figure
from .style import block_title, paper_shape

__all__ = [
    "FORMATS", "INSTALL_HINT", "RANKDIRS", "BlockNotDrawable", "Diagram", "DrawOptions",
    "RenderError",
    "block_names", "block_title", "called_blocks", "draw_block", "draw_overview", "find_block",
    "find_dot", "format_of", "paper_shape", "write_figure",
]
