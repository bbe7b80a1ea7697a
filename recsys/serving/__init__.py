"""The serving core shared by the API, precompute and evaluation: tiers, session state, catalogue snapshot,
fallback lists, cached answers, A/B arms, the recommendation and event services, the refresh of the
serving snapshots, the node's served-model cache and the store adapters (``stores``). Nothing here is
about HTTP (``recsys.api`` is routes and HTTP plumbing over it), and nothing here imports ``recsys.api``."""
