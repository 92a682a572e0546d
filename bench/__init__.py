"""The benchmark harness: `python -m bench` (full, a few minutes) or `python -m bench --quick` (seconds).

One module per measurement (see bench/README.md); each returns a JSON-ready section whose `figures`
are the numbers the table shows. Every figure is measured in the same run as its reference, pair by
pair, repeated, and the median is quoted. Nothing here asserts a time: benchmarks are not tests.
"""
