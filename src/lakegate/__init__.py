"""lakegate: a Delta Sharing server (URL and directory access)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
