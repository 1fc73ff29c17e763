"""Shorewatch: the ``shorewatch`` command and the demo that composes the other packages."""

__version__ = "0.1.0"
