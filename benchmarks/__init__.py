"""Benchmark suite for eventbus: ``python -m benchmarks`` (see benchmarks/README.md).

It measures eventbus against a bare-loop limit and its peers (blinker, pyee,
psygnal, async-signals, aiosignal, pymitter) in one process, interleaving them
round by round, and reports median nanoseconds per emission.
"""
