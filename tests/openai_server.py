"""A scripted OpenAI-compatible chat endpoint on 127.0.0.1 for judge fault injection. The reply to a request
depends on a marker in its prompt, so retries and concurrency do not change the script:
  [rate-limit-once] 429 on the first request, then a verdict;   [5xx-twice] 500 twice, then a verdict;
  [slow] answers after SLOW_S (beyond the client's timeout);    [cut-before] a reply cut before the verdict;
  [cut-after] a reply cut after the verdict; anything else: {"winner": "A", ...}, or what `decide(prompt)`
returns when one is given (a scripted judge that reads the responses). A request with `tools` is answered
with a tool call carrying the verdict JSON as its arguments (how the `tools` structured mode gets it).
Every request body is kept in `bodies`. For GRPO judge rewards (eval/reward_judge.py) scripted_scores answers score
requests with a deterministic score of the response and pairwise requests by length; flaky_scores is a judge that
disagrees with itself (each repeat of a question gets another score; pairwise it always answers "A")."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_S = 3.0


class OpenAIServer:
    def __init__(self, decide: Callable[[str], str] | None = None) -> None:
        self.seen: Counter[str] = Counter()
        self.auth: list[str | None] = []
        self.bodies: list[dict] = []
        self.decide = decide
        self.slow = True
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, payload: dict, headers: dict | None = None) -> None:
                body = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up ([slow]): expected
                    pass

            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                prompt = req["messages"][-1]["content"]
                marker = next(
                    (
                        m
                        for m in ("[rate-limit-once]", "[5xx-twice]", "[slow]", "[cut-before]", "[cut-after]")
                        if m in prompt
                    ),
                    "",
                )
                with server.lock:
                    server.seen[marker] += 1
                    n = server.seen[marker]
                    server.auth.append(self.headers.get("Authorization"))
                    server.bodies.append(req)
                if marker == "[rate-limit-once]" and n == 1:
                    return self._send(
                        429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"retry-after": "0"}
                    )
                if marker == "[5xx-twice]" and n <= 2:
                    return self._send(500, {"error": {"message": "upstream overloaded"}})
                if marker == "[slow]" and server.slow:
                    time.sleep(SLOW_S)
                content = {
                    "[cut-before]": '{"reason": "Response A is more vivid and',
                    "[cut-after]": '{"winner": "B", "reason": "Response B has the more',
                }.get(marker) or (server.decide(prompt) if server.decide else '{"winner": "A", "reason": "more vivid"}')
                finish = "length" if marker.startswith("[cut") else "stop"
                message = {"role": "assistant", "content": content}
                if req.get("tools"):
                    name = req["tools"][0]["function"]["name"]
                    call = {"id": "call_0", "type": "function", "function": {"name": name, "arguments": content}}
                    message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
                self._send(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": req["model"],
                        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAIServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def scored_response(prompt: str) -> str | None:
    """The response a GRPO score request asks about (eval/reward_judge_io.py SCORE_TEMPLATE), or None."""
    if "\n\nScore the response from 1" not in prompt:
        return None
    return _between(prompt, "\nResponse:\n", "\n\nScore the response from 1")


def hash_score(response: str) -> int:
    return 1 + int(hashlib.sha256(response.encode()).hexdigest(), 16) % 10


def scripted_scores(score_of: Callable[[str], int] = hash_score) -> Callable[[str], str]:
    """A deterministic judge: a score request gets score_of(response); a pairwise one (make judge's prompt) is won
    by the longer response, whichever order it is shown in."""

    def decide(prompt: str) -> str:
        response = scored_response(prompt)
        if response is not None:
            return json.dumps({"score": score_of(response), "reason": "scripted"})
        a = _between(prompt, "Response A:\n", "\n\nResponse B:")
        b = _between(prompt, "Response B:\n", "\n\nWhich response")
        return json.dumps({"winner": "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie", "reason": "x"})

    return decide


def flaky_scores() -> Callable[[str], str]:
    """A judge that disagrees with itself: each repeat of a score request gets the next score; pairwise, "A"."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def decide(prompt: str) -> str:
        response = scored_response(prompt)
        if response is None:
            return json.dumps({"winner": "A", "reason": "position"})
        with lock:
            seen[response] += 1
            n = seen[response]
        return json.dumps({"score": 1 + n % 10, "reason": "flaky"})

    return decide
