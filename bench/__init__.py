"""Benchmarks and evaluations on ../shared/data (or RENLIAN_SHARED_DATA); never part of the tests."""
