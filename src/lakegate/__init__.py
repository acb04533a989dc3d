"""lakegate: a Delta Sharing server (URL and directory access)."""

# The one place the version is written: pyproject.toml reads it (dynamic version), CHANGELOG.md names it.
__version__ = "0.1.0"
__all__ = ["__version__"]
