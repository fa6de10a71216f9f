"""The fault campaign (issue 17 §1): `python -m tools.chaos --help`, `make chaos`."""
