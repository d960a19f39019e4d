"""``python -m imgassets.cli``: the ``imgassets`` command (:func:`imgassets.cli.main.entry`)."""

from imgassets.cli.main import entry

entry()
