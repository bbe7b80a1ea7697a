"""recsys: e-commerce recommendations (nightly pipeline, model registry, cached serving)."""

__version__ = "0.1.0"
