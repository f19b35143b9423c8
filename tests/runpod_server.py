"""A stand-in for RunPod's GraphQL API on 127.0.0.1, for the real runpod SDK (RUNPOD_API_BASE_URL points
here). Each request is parsed with graphql-core and recorded as (operation field, arguments, auth header), so
tests assert on what the SDK really sent. Faults to inject: an HTTP status with an HTML body (what a gateway
429/5xx looks like), "drop" (connection closed without a reply), "lost" (the request is carried out, then
the connection closes: the reply is lost) or "error:<msg>" (a GraphQL error); None lets one request through."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from graphql import parse, value_from_ast_untyped

KNOWN_GPUS = {
    "NVIDIA H100 80GB HBM3",
    "NVIDIA A100 80GB PCIe",
    "NVIDIA L40S",
    "NVIDIA A40",
    "NVIDIA L4",
    "NVIDIA GeForce RTX 4090",
    "NVIDIA H200",
    "NVIDIA RTX A6000",
    "NVIDIA GeForce RTX 3090",
    "NVIDIA H100 PCIe",
    "NVIDIA GeForce RTX 5090",
}


class RunPodState:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.pods: dict[str, dict[str, Any]] = {}
        self.templates: list[dict[str, Any]] = []
        self.fail_next: list[int | str | None] = []
        self.fail_only: set[str] | None = None  # faults hit only these operation fields (None: any)
        self.lock = threading.Lock()

    def ops(self, field: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["field"] == field]


def _operation(query: str) -> tuple[str, dict[str, Any]]:
    doc = parse(query)
    field = doc.definitions[0].selection_set.selections[0]
    args = {a.name.value: value_from_ast_untyped(a.value) for a in (field.arguments or ())}
    return field.name.value, args.get("input", args)


def _answer(state: RunPodState, field: str, args: dict[str, Any]) -> Any:
    if field == "gpuTypes":
        gid = args.get("id")
        return [{"id": gid, "displayName": gid, "memoryInGb": 80, "maxGpuCount": 8}] if gid in KNOWN_GPUS else []
    if field == "podFindAndDeployOnDemand":
        pod_id = f"pod{len(state.pods) + 1:03d}"
        env = [f"{e['key']}={e['value']}" for e in args.get("env", [])]
        state.pods[pod_id] = {
            "id": pod_id,
            "name": args["name"],
            "desiredStatus": "RUNNING",
            "imageName": args["imageName"],
            "gpuCount": args.get("gpuCount"),
            "volumeInGb": args.get("volumeInGb", 0),
            "costPerHr": 2.69,
            "uptimeSeconds": 5400,
            "env": env,
            "machine": {"gpuDisplayName": args.get("gpuTypeId")},
            "runtime": {
                "ports": [
                    {"ip": "203.0.113.7", "isIpPublic": True, "privatePort": 22, "publicPort": 22022, "type": "tcp"}
                ]
            },
        }
        return {
            "id": pod_id,
            "imageName": args["imageName"],
            "env": env,
            "machineId": "m1",
            "machine": {"podHostId": f"{pod_id}-host"},
        }
    if field == "myself":
        return {"pods": list(state.pods.values()), "networkVolumes": [{"id": "vol1", "dataCenterId": "EU-RO-1"}]}
    if field == "pod":
        return state.pods.get(args.get("podId"))
    if field == "podStop":
        pod = state.pods[args["podId"]]
        pod["desiredStatus"] = "EXITED"
        return {"id": pod["id"], "desiredStatus": "EXITED"}
    if field == "podTerminate":
        state.pods.pop(args["podId"], None)
        return None
    if field == "saveTemplate":
        tpl = {"id": f"tpl{len(state.templates) + 1}", **args}
        state.templates.append(tpl)
        return tpl
    raise KeyError(field)


def make_handler(state: RunPodState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = json.loads(body)["query"]
            field, args = _operation(query)
            with state.lock:
                state.requests.append(
                    {
                        "path": self.path,
                        "field": field,
                        "args": args,
                        "query": query,
                        "auth": self.headers.get("Authorization"),
                    }
                )
                hit = state.fail_next and (state.fail_only is None or field in state.fail_only)
                fault = state.fail_next.pop(0) if hit else None
            if fault == "lost":
                with state.lock:
                    _answer(state, field, args)
            if fault in ("drop", "lost"):
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if isinstance(fault, int):
                self._send(fault, f"<html><body>{fault} injected</body></html>".encode(), "text/html")
                return
            if isinstance(fault, str) and fault.startswith("error:"):
                self._send(200, json.dumps({"errors": [{"message": fault[6:]}]}).encode(), "application/json")
                return
            with state.lock:
                data = {field: _answer(state, field, args)}
            self._send(200, json.dumps({"data": data}).encode(), "application/json")

    return Handler


class RunPodServer:
    def __init__(self) -> None:
        self.state = RunPodState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RunPodServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
