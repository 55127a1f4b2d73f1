"""Updates per second the emulator sustains (rate limit off, no latency, no faults).

Starts ``python -m vsbatch.emulator`` in a subprocess, seeds N sessions through the admin API,
then fires N updates (one per session, each with its own idempotency key) from a thread pool of
keep-alive ``httpx.Client``s, spread over client processes so that the client's GIL is not the
bottleneck (httpx's AsyncClient is several times slower per request than its sync client).
Prints updates/s and p50/p99 latency. On a 2-core machine the client shares the cores with the
server, so the figure is a lower bound.

    uv run python bench/emulator_throughput.py --updates 20000 --threads 2 --procs 2
    uv run python bench/emulator_throughput.py --updates 20000 --threads 2 --procs 2 --client stdlib

Measured on the 2-core dev VM: httpx client 1,186 updates/s (p50 2.9 ms, p99 9.8 ms), bound by
the httpx client; stdlib client 3,644 updates/s (p50 0.9 ms, p99 3.2 ms).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

API_KEY = "sk_test_bench0123456789"
_FORM = "application/x-www-form-urlencoded"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_emulator/config", timeout=1.0).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"emulator at {url} did not come up")


def _post_httpx(url: str) -> Callable[[str, str, str], int]:
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"})

    def post(path: str, body: str, key: str) -> int:
        headers = {"Idempotency-Key": key, "Content-Type": _FORM}
        return client.post(path, content=body, headers=headers).status_code

    return post


def _post_stdlib(url: str) -> Callable[[str, str, str], int]:
    host, _, port = url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port))

    def post(path: str, body: str, key: str) -> int:
        headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": key}
        headers["Content-Type"] = _FORM
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    return post


def _fire_thread(url: str, client: str, ids: list[str], latencies: list[float]) -> int:
    post = _post_httpx(url) if client == "httpx" else _post_stdlib(url)
    failures = 0
    for session_id in ids:
        started = time.perf_counter()
        status = post(
            f"/v1/identity/verification_sessions/{session_id}",
            f"metadata[batch]=bench&metadata[row]={session_id[-6:]}",
            uuid.uuid4().hex,
        )
        latencies.append(time.perf_counter() - started)
        failures += status != 200
    return failures


def _client_process(
    url: str, client: str, ids: list[str], threads: int
) -> tuple[list[float], int, float, float]:
    """One client process: a pool of threads, each with its own keep-alive connection."""
    latencies: list[float] = []
    started = time.time()
    with ThreadPoolExecutor(threads) as pool:
        futures = [
            pool.submit(_fire_thread, url, client, ids[i::threads], latencies)
            for i in range(threads)
        ]
        failures = sum(f.result() for f in futures)
    return latencies, failures, started, time.time()


def run_bench(
    updates: int = 20_000, threads: int = 4, procs: int = 2, client: str = "httpx"
) -> dict[str, Any]:
    """Start an emulator (no limit, latency or faults), fire ``updates``; return the figures."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "vsbatch.emulator", "--port", str(port), "--rate-limit", "0"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_ready(url)
        seeded = httpx.post(f"{url}/_emulator/sessions", json={"count": updates}, timeout=60)
        ids: list[str] = seeded.json()["ids"]
        shares = [ids[i::procs] for i in range(procs)]
        with multiprocessing.get_context("spawn").Pool(procs) as pool:
            jobs = [(url, client, share, threads) for share in shares]
            results = pool.starmap(_client_process, jobs)
        elapsed = max(r[3] for r in results) - min(r[2] for r in results)
        stats = httpx.get(f"{url}/_emulator/stats").json()
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    latencies = sorted(lat for r in results for lat in r[0])
    failures = sum(r[1] for r in results)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return {
        "updates": len(latencies),
        "failures": failures,
        "applied": stats["applied_total"],
        "seconds": round(elapsed, 3),
        "updates_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "client": client,
        "client_procs": procs,
        "threads_per_proc": threads,
    }


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=4, help="client threads per process")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument(
        "--client", choices=["httpx", "stdlib"], default="httpx", help="http client library"
    )
    args = parser.parse_args()
    print(json.dumps(run_bench(args.updates, args.threads, args.procs, args.client)))


if __name__ == "__main__":
    main()
