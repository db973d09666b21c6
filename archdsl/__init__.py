"""archdsl: describe convolutional networks in YAML; build, cost and draw them from the spec.

``archdsl.load(path, **overrides)`` reads a spec into a :class:`Spec`; ``spec.build()`` gives the
``torch.nn.Module``; ``export_source(spec)`` the text of a standalone PyTorch file. Importing this
package does not import torch.
"""

from .errors import Loc, SpecError, SpecErrors
from .export import export_source
from .spec import Spec, load

__all__ = ["Loc", "Spec", "SpecError", "SpecErrors", "export_source", "load"]
__version__ = "0.1.0"
