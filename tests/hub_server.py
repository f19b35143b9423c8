"""A stand-in for the Hugging Face Hub's HTTP API on 127.0.0.1, for the real huggingface_hub client
(HF_ENDPOINT points here). It records every request and stores committed files, so tests can assert on
what the client really sent. Endpoints: those create_repo + create_commit / upload_folder use, for model and
dataset repos, and those repo_info, list_repo_files and snapshot_download / hf_hub_download use to read
files back (huggingface_hub 1.17)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HubState:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.repos: dict[str, dict[str, Any]] = {}  # repo id -> {"private": bool, "files": {path: bytes}, "commits": n}
        self.lfs: dict[str, bytes] = {}
        self.fail_next: list[int] = []  # status codes to answer the next matching requests with
        self.fail_match: str | None = None  # only requests whose path contains this fail (None: any)
        self.lock = threading.Lock()


def make_handler(state: HubState, endpoint: str):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _reply(self, code: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload if payload is not None else {}).encode()
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self, body: bytes) -> None:
            with state.lock:
                state.requests.append(
                    {"method": self.command, "path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )

        def _maybe_fail(self) -> bool:
            if state.fail_next and (state.fail_match is None or state.fail_match in self.path):
                self._reply(state.fail_next.pop(0), {"error": "injected failure"})
                return True
            return False

        def do_POST(self):
            body = self._body()
            self._record(body)
            if self._maybe_fail():
                return
            path = self.path.split("?")[0]
            target = re.fullmatch(r"/api/(?:models|datasets)/([^/]+/[^/]+)/(?:preupload|commit)/[^/]+", path)
            if target and target.group(1) not in state.repos:  # what the Hub says for a repo that does not exist
                return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            if path == "/api/repos/create":
                req = json.loads(body)
                repo = f"{req.get('organization') or 'user'}/{req['name']}" if "/" not in req["name"] else req["name"]
                with state.lock:
                    exists = repo in state.repos
                    private = bool(req.get("private")) or req.get("visibility") == "private"
                    state.repos.setdefault(
                        repo, {"private": private, "files": {}, "commits": 0, "type": req.get("type") or "model"}
                    )
                return self._reply(
                    409 if exists else 200, {"url": f"{endpoint}/{repo}", "error": "exists" if exists else None}
                )
            if path == "/api/validate-yaml":
                return self._reply(200, {"errors": [], "warnings": []})
            m = re.fullmatch(r"/api/(?:models|datasets)/([^/]+/[^/]+)/preupload/([^/]+)", path)
            if m:
                files = json.loads(body)["files"]
                return self._reply(
                    200,
                    {
                        "files": [
                            {
                                "path": f["path"],
                                "uploadMode": "lfs" if f["size"] > 100_000 else "regular",
                                "shouldIgnore": False,
                            }
                            for f in files
                        ]
                    },
                )
            m = re.fullmatch(r"/(?:datasets/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
            if m:
                objects = json.loads(body)["objects"]
                return self._reply(
                    200,
                    {
                        "transfer": "basic",
                        "objects": [
                            {
                                "oid": o["oid"],
                                "size": o["size"],
                                "authenticated": True,
                                "actions": {
                                    "upload": {"href": f"{endpoint}/_lfs/{o['oid']}"},
                                    "verify": {"href": f"{endpoint}/_lfs_verify/{o['oid']}"},
                                },
                            }
                            for o in objects
                        ],
                    },
                )
            if path.startswith("/_lfs_verify/"):
                return self._reply(200, {"success": True})
            m = re.fullmatch(r"/api/(?:models|datasets)/([^/]+/[^/]+)/commit/([^/]+)", path)
            if m:
                repo = m.group(1)
                with state.lock:
                    store = state.repos[repo]["files"]
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            store[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        elif item["key"] == "lfsFile":
                            store[item["value"]["path"]] = state.lfs[item["value"]["oid"]]
                        elif item["key"] == "deletedFile":
                            store.pop(item["value"]["path"], None)
                    state.repos[repo]["commits"] += 1
                    oid = hashlib.sha1(f"{repo}{state.repos[repo]['commits']}".encode()).hexdigest()
                    state.repos[repo]["sha"] = oid
                return self._reply(200, {"commitUrl": f"{endpoint}/{repo}/commit/{oid}", "commitOid": oid})
            self._reply(404, {"error": f"not implemented: POST {path}"})

        def do_PUT(self):
            body = self._body()
            self._record(b"<%d bytes>" % len(body))
            if self.path.startswith("/_lfs/"):
                oid = self.path.rsplit("/", 1)[1]
                if hashlib.sha256(body).hexdigest() != oid:
                    return self._reply(400, {"error": "sha256 mismatch"})
                state.lfs[oid] = body
                return self._reply(200)
            self._reply(404)

        def do_GET(self):
            self._record(b"")
            path = self.path.split("?")[0]
            m = re.fullmatch(r"/api/(?:models|datasets)/([^/]+/[^/]+)(?:/revision/[^/]+)?", path)
            if m and m.group(1) in state.repos:
                repo = state.repos[m.group(1)]
                return self._reply(
                    200,
                    {
                        "id": m.group(1),
                        "private": repo["private"],
                        "sha": repo.get("sha", "0" * 40),
                        "siblings": [{"rfilename": p} for p in repo["files"]],
                    },
                )
            m = re.fullmatch(r"/api/(?:models|datasets)/([^/]+/[^/]+)/tree/[^/]+(?:/(.*))?", path)
            if m and m.group(1) in state.repos:
                prefix = (m.group(2) or "").rstrip("/")
                files = state.repos[m.group(1)]["files"]
                listed = [
                    {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    for p, b in sorted(files.items())
                    if not prefix or p.startswith(prefix + "/")
                ]
                return self._reply(200, listed)
            if self._file(path, body=True):
                return
            unknown_repo = re.match(r"/api/(?:models|datasets)/([^/]+/[^/]+)", path)
            if unknown_repo and unknown_repo.group(1) not in state.repos:  # what the Hub says for a missing repo
                return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            self._reply(404, {"error": "not found"})

        def do_HEAD(self):
            self._record(b"")
            if not self._file(self.path.split("?")[0], body=False):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def _file(self, path: str, body: bool) -> bool:
            """A file download (resolve URL): headers hf_hub_download reads (commit, etag, size), then the bytes."""
            m = re.fullmatch(r"/(?:datasets/)?([^/]+/[^/]+)/resolve/[^/]+/(.+)", path)
            if not m or m.group(1) not in state.repos or m.group(2) not in state.repos[m.group(1)]["files"]:
                return False
            data = state.repos[m.group(1)]["files"][m.group(2)]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", state.repos[m.group(1)].get("sha", "0" * 40))
            self.end_headers()
            if body:
                self.wfile.write(data)
            return True

    return Handler


class LocalHub:
    """`with LocalHub() as hub:` serves on 127.0.0.1:<free port>; hub.endpoint, hub.state."""

    def __enter__(self) -> LocalHub:
        self.state = HubState()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), None)  # type: ignore[arg-type]
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.server.RequestHandlerClass = make_handler(self.state, self.endpoint)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def stopped_endpoint() -> str:
    """The endpoint of a Hub fake that has been stopped: 127.0.0.1 and a port where nothing listens any more, which
    is what a machine with no network sees (every connection refused)."""
    with LocalHub() as hub:
        url = hub.endpoint
    return url
