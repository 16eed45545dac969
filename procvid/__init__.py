"""procvid: understanding procedures in instructional videos."""

__version__ = "0.1.0"
