"""What the spotting benchmarks share: the suite's real clips and their labels, the signals of
each stage of the chain, detection curves and the report (tables and the figure).

``python -m benchmarks.bench_spotting --suite cross --curve`` is the one command that uses them.
"""
