"""The command line: ``imgassets run | pull | lineage | models | ui`` (:mod:`imgassets.cli.main`)."""
