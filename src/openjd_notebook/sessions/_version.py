"""The package version, read from the installed distribution's metadata."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

__all__ = ["version"]

try:
    version = _distribution_version("openjd-notebook")
except PackageNotFoundError:  # running from a source tree that is not installed
    version = "0.0.0+unknown"
