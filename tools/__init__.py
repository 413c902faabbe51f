"""Developer tooling, run from the repository: nothing here ships or describes the cloud.

  audit.py  the supply-chain report (`make audit`, python -m tools.audit; CI runs it after
            the tests)
"""
