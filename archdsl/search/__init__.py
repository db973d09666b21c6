"""Architecture search over a spec whose values are choices (docs/search.md).

``space`` reads a space (no torch, no optuna); the sampler, driver, trainer, proxies, early
stopping and report build on it.
"""
