"""Benchmarks: ``python -m bench.resize``, ``bench.serve``, ``bench.ingest``, ``bench.e2e``."""
