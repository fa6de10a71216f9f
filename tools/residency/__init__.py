"""Residency and privacy at random (issue 17 §3); see run.py."""
