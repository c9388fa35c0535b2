"""Benchmarks: each measures Castiel and its baseline in the same run.

A benchmark is a module ``bench/<name>.py`` with a docstring (first line = summary) and
``run(args) -> dict``. The harness prints the result as one JSON object on the last line with
at least ``bench``, ``value``, ``baseline``, ``unit`` and ``ratio`` (value / baseline, so
higher is better for rates; benchmarks of durations invert it and say so).
"""
