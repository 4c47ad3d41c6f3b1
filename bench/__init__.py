"""Benchmarks of the pipeline at university scale (issue 7): `make bench` runs `python -m bench`."""
