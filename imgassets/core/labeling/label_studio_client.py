"""A labeling queue pushed to a Label Studio server, over its HTTP API (https://api.labelstud.io/).

:func:`push_queue` creates (or finds, by title) the project ``imgassets <scientist>`` with a
rectangle-labels config of the champion's class names (:func:`imgassets.core.labeling.exports.label_studio_config`),
then, for each queued image the project does not hold yet (tasks are known by the image's content
hash in their ``data``): uploads the image's bytes from the object store (Label Studio's own file
upload: the server needs no access to the store or the drive), and imports one task per image with
``data`` = ``{"image": <uploaded file's URL>, "path": <path in the scientist's folder>, "sha256":
<content hash>}``, the queue's rank and score in ``meta``, and the champion's boxes as a prediction
(``model_version`` = the champion's model id; a score per region and per task). A task already there
whose predictions are not the current champion's gets the champion's as a new prediction; one that
has them is left alone. The annotator then accepts, corrects, deletes or adds boxes in Label
Studio, and the scientist drops the project's JSON export into their folder: its annotations are
labels (:mod:`imgassets.core.labels.formats.label_studio`, which pairs each task with the image at
its ``data.path``), and the images leave the queue at the next run.

Authentication: a personal access token (a JWT refresh token, exchanged at ``/api/token/refresh``
for an access token sent as ``Bearer``) or a legacy API token (sent as ``Token``), from
``IMGASSETS_LABEL_STUDIO_TOKEN`` (:func:`imgassets.settings.label_studio_token`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import requests

from imgassets.core.labeling.exports import label_studio_config, label_studio_tasks
from imgassets.core.labeling.provenance import record_prelabels
from imgassets.core.labeling.queue import LabelingQueue
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import content_key
from imgassets.errors import ImgassetsError

TIMEOUT_S = 60
"""Seconds one request may take (an upload of a large image included)."""
PAGE = 100


class LabelStudioError(ImgassetsError, RuntimeError):
    """A Label Studio server that cannot be reached, refuses the token, or answers a request with an
    error; the message names the URL and what the server said."""


def project_title(scientist: str) -> str:
    """The title of the scientist's project: ``imgassets <scientist>``."""
    return f"imgassets {scientist}"


class LabelStudioClient:
    """One Label Studio server at ``url`` (``http://host:port``) with an API ``token``."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token.count(".") == 2:  # a personal access token (JWT refresh token)
            access = self._call("POST", "/api/token/refresh", json={"refresh": token}, authorized=False).get("access")
            if not access:
                raise LabelStudioError(f"{self.url}: the personal access token was not exchanged for an access token")
            self.session.headers["Authorization"] = f"Bearer {access}"
        else:
            self.session.headers["Authorization"] = f"Token {token}"

    def _call(self, method: str, path: str, authorized: bool = True, **kwargs: object):
        where = f"{self.url}{path}"
        try:
            response = (self.session.request if authorized else requests.request)(method, where, timeout=TIMEOUT_S,
                                                                                  **kwargs)
        except requests.RequestException as exc:
            raise LabelStudioError(f"Label Studio at {self.url} cannot be reached: {exc}") from None
        if response.status_code >= 400:
            raise LabelStudioError(f"Label Studio {method} {where}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else {}

    def project(self, title: str, label_config: str) -> tuple[int, bool]:
        """(id, created) of the project called ``title``, created with ``label_config`` when there is none;
        an existing project gets ``label_config`` when its own differs (new class names)."""
        page, found = 1, None
        while found is None:
            listed = self._call("GET", "/api/projects", params={"page": page, "page_size": PAGE, "title": title})
            found = next((p for p in listed.get("results", []) if p.get("title") == title), None)
            if found is not None or not listed.get("next"):
                break
            page += 1
        if found is None:
            return int(self._call("POST", "/api/projects", json={"title": title, "label_config": label_config})["id"]), True
        if found.get("label_config") != label_config:
            self._call("PATCH", f"/api/projects/{found['id']}", json={"label_config": label_config})
        return int(found["id"]), False

    def tasks(self, project: int) -> list[dict]:
        """Every task of ``project`` with its data and predictions."""
        tasks, page = [], 1
        while True:
            listed = self._call("GET", "/api/tasks", params={"project": project, "page": page, "page_size": PAGE,
                                                            "fields": "all"})
            tasks += listed.get("tasks", [])
            if len(tasks) >= int(listed.get("total", 0)) or not listed.get("tasks"):
                return tasks
            page += 1

    def upload(self, project: int, name: str, data: bytes) -> str:
        """Upload one image file to ``project`` without making a task; return the URL tasks use."""
        done = self._call("POST", f"/api/projects/{project}/import", params={"commit_to_project": "false"},
                          files={"file": (name, data)})
        ids = done.get("file_upload_ids") or []
        uploads = self._call("GET", f"/api/projects/{project}/file-uploads", params={"ids": str(ids)})
        if not ids or not uploads:
            raise LabelStudioError(f"Label Studio at {self.url} kept no file for the upload of {name}")
        return f"/data/{uploads[0]['file']}"

    def import_tasks(self, project: int, tasks: list[dict]) -> None:
        """Create ``tasks`` (with their predictions) in ``project``."""
        if tasks:
            self._call("POST", f"/api/projects/{project}/import", json=tasks)

    def add_prediction(self, task: int, prediction: dict) -> None:
        """Add ``prediction`` (``result``, ``score``, ``model_version``) to ``task``."""
        self._call("POST", "/api/predictions", json={"task": task, **prediction})

    def export(self, project: int) -> list[dict]:
        """The project's Label Studio JSON export (every task, annotated or not)."""
        return self._call("GET", f"/api/projects/{project}/export",
                          params={"exportType": "JSON", "download_all_tasks": "true"})


@dataclass
class PushResult:
    """What :func:`push_queue` did in ``project``: tasks ``created`` (content hashes), tasks whose
    prediction was ``updated`` to the current champion's, tasks left ``unchanged``."""

    project: int
    project_created: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def push_queue(client: LabelStudioClient, store: ObjectStore, queue: LabelingQueue) -> PushResult:
    """Push ``queue``'s images and pre-annotations to the scientist's project (module docstring)."""
    project, created = client.project(project_title(queue.scientist), label_studio_config(queue.class_names))
    result = PushResult(project, created)
    held = {}
    for task in client.tasks(project):
        sha = (task.get("data") or {}).get("sha256")
        if isinstance(sha, str):
            held[sha] = task
    fresh = []
    for entry, task in zip(queue.entries, label_studio_tasks(queue), strict=True):
        prediction = task["predictions"][0]
        there = held.get(entry["sha256"])
        if there is None:
            data = store.get_bytes(content_key(entry["sha256"]))
            task["data"] = {"image": client.upload(project, posixpath.basename(entry["path"]), data),
                            "path": entry["path"], "sha256": entry["sha256"]}
            fresh.append(task)
            result.created.append(entry["sha256"])
        elif not any(p.get("model_version") == prediction["model_version"] for p in there.get("predictions") or []):
            client.add_prediction(int(there["id"]), prediction)
            result.updated.append(entry["sha256"])
        else:
            result.unchanged.append(entry["sha256"])
    client.import_tasks(project, fresh)
    record_prelabels(store, queue)  # what comes back is compared with what was handed out
    return result
