"""execmetrics: an executive metrics server for subscription businesses."""

from importlib.metadata import version

__version__ = version("execmetrics")
