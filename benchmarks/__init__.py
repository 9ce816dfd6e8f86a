"""Speed benchmarks. Run all with `make bench` (python -m benchmarks)."""
