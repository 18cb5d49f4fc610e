"""Absolute Zero Reasoner self-play trainer; every verdict comes from the verification service."""

__version__ = "0.1.0"
