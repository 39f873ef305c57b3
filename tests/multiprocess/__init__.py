"""Tests that run the service as real processes: races, kill -9, replicas, expiry."""
