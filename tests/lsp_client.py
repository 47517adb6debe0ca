"""A small Language Server Protocol client for the tests: it starts a
server as a subprocess and speaks JSON-RPC to it over its pipes, as an
editor does."""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


class LspClient:
    """`request` waits for the answer; notifications from the server are
    queued for `wait_for`."""

    def __init__(self, command: list[str] | None = None, cwd: Path = ROOT):
        self.process = subprocess.Popen(command or [sys.executable, "-m", "i2dl_dsl.cli.lsp"], cwd=cwd,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._ids = itertools.count(1)
        self._answers: dict[int, queue.Queue] = {}
        self.notifications: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    # ----------------------------------------------------------- wire
    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        with self._lock:
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.process.stdin.flush()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(stream.read(length))
            message["received"] = time.perf_counter()
            if "id" in message and "method" not in message:
                self._answers.setdefault(message["id"], queue.Queue()).put(message)
            elif "id" in message:  # a request from the server (configuration, registration): answer null
                self._send({"id": message["id"], "result": None})
            else:
                self.notifications.put(message)

    # ----------------------------------------------------------- protocol
    def request(self, method: str, params: Any, timeout: float = 30) -> Any:
        number = next(self._ids)
        answers = self._answers.setdefault(number, queue.Queue())
        self._send({"id": number, "method": method, "params": params})
        answer = answers.get(timeout=timeout)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def wait_for(self, method: str, accept: Callable[[dict], bool] = lambda p: True, timeout: float = 30) -> dict:
        """The next notification `method` whose params `accept` takes (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.notifications.get(timeout=max(0.0, deadline - time.monotonic()))
            if message.get("method") == method and accept(message["params"]):
                message["params"]["received"] = message["received"]
                return message["params"]

    def initialize(self, root: Path = ROOT, options: dict | None = None) -> dict:
        result = self.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {},
                                             "initializationOptions": options or {}})
        self.notify("initialized", {})
        return result

    def open(self, path: Path, text: str, version: int = 1) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {"uri": path.as_uri(), "languageId": "net",
                                                              "version": version, "text": text}})

    def change(self, path: Path, text: str, version: int) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": path.as_uri(), "version": version},
                                               "contentChanges": [{"text": text}]})

    def diagnostics(self, path: Path, version: int | None = None, timeout: float = 30) -> dict:
        """The next published diagnostics of `path` (of `version`, when given)."""
        uri = path.resolve().as_uri()
        return self.wait_for("textDocument/publishDiagnostics",
                             lambda p: p["uri"] == uri and (version is None or p.get("version") == version), timeout)

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a test already failing must still end the server
            self.process.kill()
            self.process.wait()
        finally:
            for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
                stream.close()
