"""Placeholder: filled in by the component family owner."""
