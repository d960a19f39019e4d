"""Partitions: one dynamic partition per scientist folder on the shared drive."""

import dagster as dg

scientists = dg.DynamicPartitionsDefinition(name="scientists")

FINGERPRINT_TAG = "imgassets/fingerprint"
"""Run tag: the fingerprint of the scientist's folder that the sensor launched the run for; the
image index reads the listing stored under it (:mod:`imgassets.core.drive.listing`)."""
