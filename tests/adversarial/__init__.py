"""Adversarial tests: hostile input, careless operators; each fails on the code before its fix."""
