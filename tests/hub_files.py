"""A read-only Hugging Face Hub on 127.0.0.1 for tests: the real huggingface_hub and datasets clients, pointed at it
with HF_ENDPOINT, download model files (hf_hub_download: HEAD then GET of /<repo>/resolve/<rev>/<file>) and stream
dataset files (datasets through HfFileSystem: /api/datasets/<repo>[/revision/<rev>], /tree/, /paths-info/, ranged
GETs of /datasets/<repo>/resolve/<rev>/<file>). Gated repos answer 401 without the right token. Every request is
recorded, so a test can say "a cache hit made no request". (tests/hub_server.py is the write side: pushes.)"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse


@dataclass
class Repo:
    files: dict[str, bytes]
    gated_token: str | None = None  # a gated repo answers only this Bearer token
    sha: str = ""

    def __post_init__(self) -> None:
        digest = hashlib.sha1(
            json.dumps(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in self.files.items())).encode()
        )
        self.sha = digest.hexdigest()


@dataclass
class State:
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)  # (models|datasets, org/name)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _entry(path: str, data: bytes) -> dict:
    return {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, json_body=None) -> None:
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(
            status,
            json.dumps({"error": message}).encode(),
            {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"},
        )

    def _repo(self, kind: str, repo_id: str) -> Repo | None:
        repo = self.state.repos.get((kind, repo_id))
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return None
        if repo.gated_token and self.headers.get("Authorization") != f"Bearer {repo.gated_token}":
            self._error(401, "GatedRepo", f"Access to {repo_id} is restricted. You must have access to it.")
            return None
        return repo

    def _route(self) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        with self.state.lock:
            self.state.requests.append(f"{self.command} {path}")
        m = re.fullmatch(r"/(?:(datasets)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._resolve("datasets" if m.group(1) else "models", m.group(2), m.group(4))
        m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)(?:/revision/[^/]+)?", path)
        if m:
            repo = self._repo(m.group(1), m.group(2))
            if repo:
                self._send(
                    200,
                    json_body={
                        "id": m.group(2),
                        "sha": repo.sha,
                        "private": False,
                        "gated": "auto" if repo.gated_token else False,
                        "cardData": {},
                        "siblings": [{"rfilename": f} for f in sorted(repo.files)],
                        "lastModified": "2026-11-01T00:00:00.000Z",
                    },
                )
            return None
        m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/(tree|paths-info)/([^/]+)/?(.*)", path)
        if m:
            return self._listing(m.group(1), m.group(2), m.group(3), m.group(5), url.query)
        self._error(404, "EntryNotFound", f"no route {path}")
        return None

    def _resolve(self, kind: str, repo_id: str, filename: str) -> None:
        repo = self._repo(kind, repo_id)
        if repo is None:
            return
        data = repo.files.get(filename)
        if data is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist in {repo_id}")
            return
        headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{hashlib.sha1(data).hexdigest()}"', "Accept-Ranges": "bytes"}
        span = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if span:
            start = int(span.group(1))
            end = min(int(span.group(2)) if span.group(2) else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            self._send(206, data[start : end + 1], headers)
            return
        self._send(200, data, headers)

    def _listing(self, kind: str, repo_id: str, what: str, prefix: str, query: str) -> None:
        repo = self._repo(kind, repo_id)
        if repo is None:
            return
        if what == "paths-info":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            try:
                asked = json.loads(raw).get("paths", [])
            except json.JSONDecodeError:
                asked = parse_qs(raw).get("paths", [])
            out = [_entry(p, repo.files[p]) for p in asked if p in repo.files]
            out += [
                {"type": "directory", "path": p, "oid": "0" * 40}
                for p in asked
                if p not in repo.files and any(f.startswith(p.rstrip("/") + "/") for f in repo.files)
            ]
            self._send(200, json_body=out)
            return
        recursive = parse_qs(query).get("recursive", ["false"])[0].lower() == "true"
        base = prefix.strip("/")
        out, dirs = [], set()
        for f, data in sorted(repo.files.items()):
            if base and not f.startswith(base + "/"):
                continue
            rest = f[len(base) + 1 :] if base else f
            if "/" in rest and not recursive:
                dirs.add((base + "/" if base else "") + rest.split("/")[0])
                continue
            out.append(_entry(f, data))
        out += [{"type": "directory", "path": d, "oid": "0" * 40} for d in sorted(dirs)]
        self._send(200, json_body=out)

    do_GET = do_HEAD = do_POST = _route


class HubFiles:
    """with HubFiles() as hub: hub.add_model("org/m", folder); env HF_ENDPOINT=hub.endpoint"""

    def __init__(self) -> None:
        self.state = State()
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, kind: str, repo_id: str, files: dict[str, bytes], gated_token: str | None = None) -> Repo:
        repo = Repo(dict(files), gated_token)
        self.state.repos[(kind, repo_id)] = repo
        return repo

    def add_model(self, repo_id: str, folder: Path, gated_token: str | None = None, weights: bool = False) -> Repo:
        files = {
            p.name: p.read_bytes()
            for p in Path(folder).iterdir()
            if p.is_file() and (weights or not p.name.endswith((".safetensors", ".bin")))
        }
        return self.add("models", repo_id, files, gated_token)

    def __enter__(self) -> HubFiles:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
