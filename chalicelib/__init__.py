"""Session service: everything that ships to Lambda besides app.py."""

__version__ = "0.3.0"
