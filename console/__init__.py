"""The operators' console: the operations dashboard and the demo set-up.

The top of the tree: the only package allowed to import every app (lint-imports enforces
that no app imports it).
"""
