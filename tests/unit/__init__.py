"""Pure rules and the layout: no moto, no network; `pytest tests/unit` runs in seconds."""
