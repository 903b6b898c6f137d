"""Benchmarks: scripts that print one table each, run from the repository root as
``python -m benchmarks.NAME`` (``--help`` says what each measures and how)."""
