"""Writing a file so that readers see the old file or the whole new one, never a part of it.

:func:`atomic_path` gives a temporary name beside the target, unique to this call (``mkstemp``:
two processes or threads writing the same target never share one, and the name does not grow with
the target's, so a long file name still fits), renames it onto the target when the block succeeds,
and removes it when the block fails (a full disk, an error, an interrupt): a failure leaves neither
a torn target nor a stray temporary file. Temporary names start with :data:`TMP_PREFIX`, which the
object store's listing skips.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".tmp-"


@contextmanager
def atomic_path(target: str | Path, shared: bool = False) -> Iterator[str]:
    """Yield a fresh temporary path (an empty file) in ``target``'s folder, created when missing;
    on success it replaces ``target`` (``os.replace``), on failure it is removed and the error
    raised. The block may write it, or have a library write it by name. The file is private to its
    owner (``mkstemp``'s mode 0600) unless ``shared``: then it gets the mode a new file of this
    process gets (0666 less the umask), as for a file a user asked for (fetched weights)."""
    folder = os.path.dirname(os.fspath(target)) or "."
    os.makedirs(folder, exist_ok=True)
    descriptor, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
    os.close(descriptor)
    try:
        yield tmp
        if shared:
            os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def current_umask() -> int:
    """This process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
