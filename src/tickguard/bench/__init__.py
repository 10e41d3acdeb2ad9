"""Benchmarks behind ``tickguard bench …``: measured figures, not timed tests."""
