"""The HTTP routes: one Chalice Blueprint per resource, registered by app.py."""
