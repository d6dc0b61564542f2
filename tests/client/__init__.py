"""Tests of the Python client library and the client CLI commands."""
