"""The API's routes: one Blueprint per resource (chalicelib/api/routing.py declares them)."""
