"""imgassets: scientists' shared-drive images to validated, versioned YOLO datasets and models.

The package has two layers:

* :mod:`imgassets.core` -- the functional core (no Dagster import): image inspection, label
  parsing, manifests, the object store, dataset staging and training.
* :mod:`imgassets.defs` -- the thin Dagster layer (assets, checks, sensors, resources) assembled
  into one ``Definitions`` in :mod:`imgassets.definitions`.
"""

__version__ = "0.1.0"
