"""Diagnostics whose findings are recorded in docs/performance-history.md: kept to re-check a finding, not run
as benchmarks of what a user gets (see bench/README.md)."""
