"""Static checks over the code: bandit, ruff, mypy."""
