"""Shared parts of the benchmarks: the app gunicorn serves, and the load generator (wrk)."""
