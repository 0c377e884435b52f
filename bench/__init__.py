"""Benchmarks: each module measures one path on this machine and prints (and records) its figures.

``python -m bench.run`` runs them all; ``python -m bench.<module>`` runs one.
"""
