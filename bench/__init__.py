"""Benchmarks of lrsched against its references: ``python -m bench`` (see ``__main__``)."""
