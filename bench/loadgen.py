"""A small asyncio HTTP/1.1 load generator (keep-alive, N concurrent connections, fixed
duration). Runs in its own process so that it does not share the server's CPU time slice
accounting; prints one JSON line: requests, errors, seconds, latencies (ms)."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time


async def client(host: str, port: int, requests: list[bytes], stop: float, lat: list[float],
                 errors: list[int], seed: int) -> None:
    rnd = random.Random(seed)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop:
            req = rnd.choice(requests)
            t = time.perf_counter()
            writer.write(req)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            if length:
                await reader.readexactly(length)
            lat.append((time.perf_counter() - t) * 1000)
            if not status_line.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2")):
                errors.append(int(status_line.split()[1]))
    finally:
        writer.close()


async def main(spec: dict) -> dict:
    stop = time.perf_counter() + spec["seconds"]
    lat: list[float] = []
    errors: list[int] = []
    requests = [r.encode("latin-1") for r in spec["requests"]]
    started = time.perf_counter()
    await asyncio.gather(*(client(spec["host"], spec["port"], requests, stop, lat, errors, i)
                           for i in range(spec["connections"])))
    elapsed = time.perf_counter() - started
    lat.sort()
    return {"requests": len(lat), "errors": len(errors), "error_codes": sorted(set(errors))[:5],
            "seconds": elapsed, "p50": lat[len(lat) // 2] if lat else None,
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.stdin.read())))))
