"""The command line: ``imgassets run | pull | pull-model | lineage | models | diff | retract | gc | ui``
(:mod:`imgassets.cli.main`); ``python -m imgassets.cli.upgrade`` seals an older store's records once."""
