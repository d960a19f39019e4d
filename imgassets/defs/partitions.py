"""Partitions: one dynamic partition per scientist folder on the shared drive."""

import dagster as dg

scientists = dg.DynamicPartitionsDefinition(name="scientists")
