"""A stand-in for RunPod's APIs on 127.0.0.1: GraphQL for the real runpod SDK (RUNPOD_API_BASE_URL points here)
and the REST API v2 Instant Cluster endpoints (RUNPOD_REST_URL points here): POST/GET /v2/clusters,
GET/DELETE /v2/clusters/{id}, GET /v2/clusters/{id}/pods, validating a create as the published OpenAPI spec does
(unknown keys, podCount 2..250, GPU types) and answering errors as problem+json. Each GraphQL request is parsed
with graphql-core and recorded as (operation field, arguments, auth header); each REST request as ("METHOD /path
template", JSON body, auth), so tests assert on what was really sent. A pod reports its price (costPerHr) and an
uptime that advances by one step at each read of it (pod_uptime_step_s), as RunPod's own billing figures. Faults to inject: an HTTP status with an
HTML body (what a gateway 429/5xx looks like), "drop" (connection closed without a reply), "lost" (the request is
carried out, then the connection closes: the reply is lost) or "error:<msg>" (a GraphQL error); None lets one
request through."""

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
        self.pods_made = self.clusters_made = 0  # ids are never reused (RunPod's are not)
        self.templates: list[dict[str, Any]] = []
        self.clusters: dict[str, dict[str, Any]] = {}
        self.cluster_pods: dict[str, list[dict[str, Any]]] = {}
        self.fail_next: list[int | str | None] = []
        self.fail_only: set[str] | None = None  # faults hit only these operation fields (None: any)
        self.pod_uptime_s = 5400  # what a new pod reports as its uptime and hourly rate (its cost so far)
        self.pod_cost_per_hr = 2.69
        # a running pod's clock: each read of it (the `pod` query) first adds this many seconds to its uptime, so
        # its spend advances one step per poll, without wall-clock time in a test; after `pod_reads_to_exit` reads
        # it reports EXITED (it stopped itself; None: it runs until stopped or terminated)
        self.pod_uptime_step_s = 0.0
        self.pod_reads_to_exit: int | None = None
        self.pod_reads: dict[str, int] = {}
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
        state.pods_made = max(state.pods_made, len(state.pods)) + 1  # a test may seed pods of its own
        pod_id = f"pod{state.pods_made:03d}"
        env = [f"{e['key']}={e['value']}" for e in args.get("env", [])]
        state.pods[pod_id] = {
            "id": pod_id,
            "name": args["name"],
            "desiredStatus": "RUNNING",
            "imageName": args["imageName"],
            "gpuCount": args.get("gpuCount"),
            "volumeInGb": args.get("volumeInGb", 0),
            "costPerHr": state.pod_cost_per_hr,
            "uptimeSeconds": state.pod_uptime_s,
            "env": env,
            "dockerArgs": args.get("dockerArgs", ""),
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
        pod = state.pods.get(args.get("podId"))
        if pod and pod["desiredStatus"] == "RUNNING":
            reads = state.pod_reads[pod["id"]] = state.pod_reads.get(pod["id"], 0) + 1
            pod["uptimeSeconds"] = pod.get("uptimeSeconds", 0) + state.pod_uptime_step_s
            if state.pod_reads_to_exit is not None and reads >= state.pod_reads_to_exit:
                pod["desiredStatus"] = "EXITED"
        return pod
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


CREATE_KEYS = {"name", "type", "compute", "dataCenterIds", "mounts", "startSsh", "startJupyter", "image", "args",
               "disk", "env", "ports"}  # fmt: skip
COMPUTE_KEYS = {"gpuTypeId", "gpuCountPerPod", "podCount"}


def _problem(status: int, detail: str, errors: list[str] | None = None) -> tuple[int, dict[str, Any]]:
    titles = {400: "Bad Request", 404: "Not Found", 401: "Unauthorized"}
    return status, {
        "title": titles.get(status, "Error"),
        "status": status,
        "detail": detail,
        **({"errors": errors} if errors else {}),
    }


def _create_cluster(state: RunPodState, body: dict[str, Any]) -> tuple[int, Any]:
    extra = sorted(set(body) - CREATE_KEYS) + sorted(set(body.get("compute") or {}) - COMPUTE_KEYS)
    if extra:
        return _problem(
            400, "request could not be processed", [f"$: additional properties '{k}' not allowed" for k in extra]
        )
    missing = [k for k in ("name", "type", "compute") if k not in body]
    compute = body.get("compute") or {}
    missing += [f"compute.{k}" for k in sorted(COMPUTE_KEYS - set(compute))]
    if missing:
        return _problem(422, "missing required fields", missing)
    if not 2 <= int(compute["podCount"]) <= 250:
        return _problem(400, "podCount must be between 2 and 250")
    if compute["gpuTypeId"] not in KNOWN_GPUS:
        return _problem(400, f"unknown gpuTypeId '{compute['gpuTypeId']}'")
    state.clusters_made = max(state.clusters_made, len(state.clusters)) + 1
    cid = f"cluster{state.clusters_made:03d}"
    pods = []
    for rank in range(int(compute["podCount"])):
        pods.append(
            {
                "id": f"{cid}-pod{rank}",
                "name": f"{body['name']}-pod-{rank}",
                "status": "RUNNING",
                "image": body.get("image"),
                "args": body.get("args", ""),
                "env": body.get("env", {}),
                "mounts": body.get("mounts") or {},
                "cost": 2.69 * int(compute["gpuCountPerPod"]),
                "cluster": {"id": cid, "rank": rank, "ip": f"10.65.0.{rank + 2}"},
            }
        )
    cluster = {
        "id": cid,
        "name": body["name"],
        "type": body["type"],
        "compute": compute,
        "pods": {"total": len(pods), "byStatus": {"RUNNING": len(pods)}},
        "primary": {"podId": pods[0]["id"], "status": "RUNNING", "sshEndpoint": "203.0.113.9:22122"},
        "createdAt": "2026-12-01T00:00:00Z",
    }
    state.clusters[cid], state.cluster_pods[cid] = cluster, pods
    return 201, cluster


def _rest(state: RunPodState, method: str, path: str, body: Any) -> tuple[str, int, Any]:
    """(the operation as "METHOD /path template", status, JSON reply or None)."""
    parts = path.rstrip("/").split("/")  # '', 'v2', 'clusters', id?, 'pods'?
    if parts[:3] != ["", "v2", "clusters"]:
        return f"{method} {path}", *_problem(404, "no such route")
    if len(parts) == 3:
        op = f"{method} /v2/clusters"
        if method == "POST":
            return op, *_create_cluster(state, body or {})
        return op, 200, {"clusters": list(state.clusters.values())}
    cid = parts[3]
    op = f"{method} /v2/clusters/{{id}}" + ("/pods" if len(parts) == 5 else "")
    if cid not in state.clusters:
        return op, *_problem(404, "cluster not found")
    if len(parts) == 5:
        return op, 200, {"pods": state.cluster_pods[cid]}
    if method == "DELETE":
        state.clusters.pop(cid)
        state.cluster_pods.pop(cid)
        return op, 204, None
    return op, 200, state.clusters[cid]


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

        def _rest_request(self, method: str):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw) if raw else None
            with state.lock:
                op = _rest(RunPodState(), method, self.path, None)[0]  # the route only, nothing done yet
                state.requests.append(
                    {
                        "path": self.path,
                        "field": op,
                        "args": body,
                        "query": raw.decode(),
                        "auth": self.headers.get("Authorization"),
                    }
                )
                hit = state.fail_next and (state.fail_only is None or op in state.fail_only)
                fault = state.fail_next.pop(0) if hit else None
            if self._inject(fault, lambda: _rest(state, method, self.path, body)):
                return
            with state.lock:
                _, status, reply = _rest(state, method, self.path, body)
            if status == 204:
                self.send_response(204)
                self.end_headers()
                return
            ctype = "application/problem+json" if status >= 400 else "application/json"
            self._send(status, json.dumps(reply).encode(), ctype)

        def _inject(self, fault, apply) -> bool:
            """Act out an injected fault; True when the request is answered (or dropped) by it. "lost" applies the
            request, then drops the reply; "drop" drops it unapplied; a status code answers with an HTML error."""
            if fault == "lost":
                with state.lock:
                    apply()
            if fault in ("drop", "lost"):
                self.close_connection = True
                self.connection.shutdown(2)
                return True
            if isinstance(fault, int):
                self._send(fault, f"<html><body>{fault} injected</body></html>".encode(), "text/html")
                return True
            return False

        def do_GET(self):
            self._rest_request("GET")

        def do_DELETE(self):
            self._rest_request("DELETE")

        def do_POST(self):
            if self.path.startswith("/v2/"):
                self._rest_request("POST")
                return
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
            if self._inject(fault, lambda: _answer(state, field, args)):
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
