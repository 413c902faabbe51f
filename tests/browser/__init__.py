"""The dashboard in headless Chromium against the local stack."""
