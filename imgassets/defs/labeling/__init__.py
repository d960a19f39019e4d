"""The labeling assets: what to label next, per scientist (:mod:`imgassets.defs.labeling.assets`)."""
