"""Simulator test configuration: the sim tests are CPU-bound and need no extra fixtures."""
