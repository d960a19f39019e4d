"""Functional core of imgassets. Nothing in this package imports Dagster."""
