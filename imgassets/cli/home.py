"""Where a command works: the home (``IMGASSETS_HOME``), the shared root, the Dagster instance and
the object store of the deployment, each checked before a command uses it."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from imgassets import settings
from imgassets.cli.usage import UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]


def inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_class_registry() -> None:
    """Validate ``$IMGASSETS_CLASS_REGISTRY`` once, before any run starts: a registry that cannot be
    used is one :class:`UsageError` (exit 2) naming the file, key and line, not a failure of every
    scientist's run."""
    from imgassets.core.labels.class_registry import ClassRegistryError, load_registry

    path = settings.class_registry_path()
    if path is not None:
        try:
            load_registry(path)
        except ClassRegistryError as exc:
            raise UsageError(f"class registry (${settings.CLASS_REGISTRY_ENV}): {exc}") from None


def check_policy_settings() -> None:
    """Build the policy resources once, before anything is created (:func:`imgassets.defs.policies.policy_resources`,
    what every run will use): a variable whose value cannot work is one
    :class:`~imgassets.settings.SettingsError` (exit 2) naming it, and no home is made."""
    from imgassets.defs.policies import policy_resources

    policy_resources()


def recorded_shared_roots(home_dir: Path) -> list[Path]:
    """The shared drive roots ``home_dir`` has ingested (:func:`imgassets.settings.shared_roots_file`)."""
    try:
        text = settings.shared_roots_file(home_dir).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return []
    return [Path(line) for line in text.splitlines() if line.startswith("/")]


def refuse_inside_shared_roots(home_dir: Path, named: list[tuple[str, Path]]) -> None:
    """Raise :class:`UsageError` (exit 2) when one of ``named`` (``(what, path)``) lies inside a shared
    drive root ``home_dir`` has ingested or ``$IMGASSETS_SHARED_ROOT``: the drive is only ever read,
    by every command."""
    roots = recorded_shared_roots(home_dir)
    if os.environ.get(settings.SHARED_ROOT_ENV):
        roots.append(settings.shared_root())
    for root in roots:
        for name, path in named:
            if inside(path.expanduser().resolve(), root):
                raise UsageError(f"{name} {path} is inside the shared drive root {root} (ingested by this home, or "
                                 f"${settings.SHARED_ROOT_ENV}): imgassets never writes into the shared drive")


def record_shared_root(home_dir: Path, root: Path) -> None:
    """Add ``root`` (absolute, resolved) to the roots ``home_dir`` has ingested, once."""
    if root not in recorded_shared_roots(home_dir):
        try:
            home_dir.mkdir(parents=True, exist_ok=True)  # a production DAGSTER_HOME lives elsewhere
            with open(settings.shared_roots_file(home_dir), "a", encoding="utf-8", errors="surrogateescape") as handle:
                handle.write(f"{root}\n")
        except OSError as exc:
            raise UsageError(f"home {home_dir} is not writable: {exc.strerror or exc}") from None


def prepare_environment(shared_root: Path | None, home: Path | None, build_demo: bool = True) -> tuple[Path, Path]:
    """Resolve home and shared root, export them (and ``DAGSTER_HOME``) for the Dagster layer, write
    the instance's ``dagster.yaml`` when missing, and build the demo drive when no root is given.

    Every path is checked before anything is created: a home (or Dagster instance) inside the shared
    root, a shared root inside the home (other than the demo drive) or a missing shared root raise
    :class:`UsageError` with nothing written anywhere, so a refused command never leaves a folder in
    a scientist's drive (the sensor would see it as a change)."""
    home_dir = (home or settings.home()).expanduser().resolve()
    dagster_home = settings.dagster_home(home_dir)
    if shared_root is None and os.environ.get(settings.SHARED_ROOT_ENV):
        shared_root = Path(os.environ[settings.SHARED_ROOT_ENV])
    demo = shared_root is None
    root = settings.demo_drive(home_dir) if demo else shared_root.expanduser().resolve()
    if not demo:
        if not root.is_dir():
            raise UsageError(f"shared drive root {root} does not exist or is not a directory")
        for name, path in (("home", home_dir), ("Dagster instance (DAGSTER_HOME)", dagster_home.resolve())):
            if inside(path, root):
                raise UsageError(f"{name} {path} must not be inside the shared drive root {root}: imgassets never "
                                 "writes into the shared drive, and it would be read as a scientist folder")
        if inside(root, home_dir):
            raise UsageError(f"shared drive root {root} must not be inside the home {home_dir}: the object store's "
                             "folders would be read as scientists")
    try:
        dagster_home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=dagster_home):
            pass
    except OSError as exc:
        raise UsageError(f"home {home_dir} is not writable: {exc.strerror or exc}") from None
    record_shared_root(home_dir, root)
    if demo and build_demo:
        from imgassets.core.drive.demo import build_demo_drive

        build_demo_drive(root)
    os.environ[settings.HOME_ENV] = str(home_dir)
    os.environ[settings.SHARED_ROOT_ENV] = str(root)
    os.environ[settings.DAGSTER_HOME_ENV] = str(dagster_home)
    instance_yaml = dagster_home / "dagster.yaml"
    if not instance_yaml.exists():
        template = REPO_ROOT / "dagster.yaml"
        if template.is_file():
            shutil.copyfile(template, instance_yaml)
        else:
            instance_yaml.write_text("telemetry:\n  enabled: false\n")
    return home_dir, root


INSTANCE_LOCK_WAIT_S = 120
"""How long ``imgassets run`` waits for another process that is creating the same Dagster instance."""


@contextmanager
def open_instance(dagster_home: Path):
    """The Dagster instance at ``dagster_home``, created under an exclusive lock
    (``<dagster_home>/.imgassets-instance.lock``, ``flock``): two commands started at once on a
    fresh home would otherwise both create its SQLite databases and one fail on the schema
    version row. Waits up to :data:`INSTANCE_LOCK_WAIT_S` seconds for the other, then raises
    :class:`UsageError`."""
    import fcntl
    import time

    import dagster as dg

    with open(dagster_home / ".imgassets-instance.lock", "w") as lock:
        deadline = time.monotonic() + INSTANCE_LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UsageError(f"another process has been creating the Dagster instance at {dagster_home} "
                                     f"for {INSTANCE_LOCK_WAIT_S} s; try again when it is done") from None
                time.sleep(0.2)
        instance = dg.DagsterInstance.get()
        try:
            instance.get_runs(limit=1)  # every storage created and stamped while the lock is held
            instance.event_log_storage.get_concurrency_keys()
            fcntl.flock(lock, fcntl.LOCK_UN)
        except BaseException:
            instance.dispose()
            raise
    with instance:
        yield instance


def open_store(home: Path | None, create_bucket: bool = False):
    """The deployment's object store (``IMGASSETS_DEPLOYMENT``, read by :mod:`imgassets.settings`
    as the Dagster resources read it, without importing Dagster); ``home`` overrides
    ``IMGASSETS_HOME``. Returns (store, home directory). Raises :class:`UsageError` for an unknown
    deployment, a production one missing its endpoint or keys, a local home without a store, and an ``ObjectStoreError`` for a
    store that cannot be reached or, unless ``create_bucket``, a bucket that does not exist."""
    home_dir = (home or settings.home()).expanduser().resolve()
    os.environ[settings.HOME_ENV] = str(home_dir)
    try:
        name = settings.deployment()
        if name == "local":
            from imgassets.core.store.local import LocalObjectStore

            objects = settings.local_objects(home_dir)
            if not objects.is_dir():  # say so, rather than create an empty store in a mistyped home
                raise UsageError(f"home {home_dir} holds no object store ({objects} does not exist): run "
                                 f"'imgassets run --home {home_dir}' first, or name the right home with --home")
            return LocalObjectStore(objects), home_dir
        s3 = settings.s3_settings()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    access_key, secret_key = (os.environ.get(var) for var in (settings.S3_ACCESS_KEY_ENV, settings.S3_SECRET_KEY_ENV))
    if not (access_key and secret_key):
        raise UsageError(f"{settings.DEPLOYMENT_ENV}={name} needs {settings.S3_ACCESS_KEY_ENV} "
                         f"and {settings.S3_SECRET_KEY_ENV}")
    from imgassets.core.store.s3 import S3ObjectStore

    return S3ObjectStore(access_key=access_key, secret_key=secret_key, create_bucket=create_bucket, **s3), home_dir
