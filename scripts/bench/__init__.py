"""The benchmark suite: `python -m scripts.bench` (see BENCHMARKS.md), and helpers the other scripts share."""
