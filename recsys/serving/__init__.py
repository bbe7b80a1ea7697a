"""The serving core shared by the API, precompute and evaluation."""
