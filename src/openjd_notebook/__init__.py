"""openjd-notebook: write, run and understand Open Job Description jobs from notebooks.

The session engine lives in :mod:`openjd_notebook.sessions`.
"""

from .sessions._version import version as __version__

__all__ = ["__version__"]
