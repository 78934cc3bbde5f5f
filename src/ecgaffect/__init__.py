"""ecgaffect: affective state from single-lead ECG (self-supervised models, live monitoring)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ecgaffect")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
