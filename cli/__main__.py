"""`python -m cli ...`: the operator CLI (see cli/__init__.py)."""

from cli import main

main()
