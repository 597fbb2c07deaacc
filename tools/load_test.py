#!/usr/bin/env python3
"""Bounded load test of `pmpd serve` on loopback: N requests, C at a time (stdlib only).

Prints latency percentiles, errors and throughput as Markdown; exits 1 on any error.
  python3 tools/load_test.py --port 8080 --requests 200 --concurrency 8
"""
import argparse
import http.client
import json
import statistics
import threading
import time

PROMPTS = [
    "German: Zwei Hunde spielen im Schnee.\nEnglish:\n",
    "German: Ein Mann fährt mit dem Fahrrad über eine Brücke.\nEnglish:\n",
    "German: Eine Frau liest ein Buch.\nEnglish:\n",
    "German: Kinder spielen im Park.\nEnglish:\n",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--stream-every", type=int, default=2, help="every k-th request streams (0: none)")
    a = ap.parse_args()

    latencies, errors, tokens = [], [], [0]
    lock = threading.Lock()
    next_index = [0]

    def worker():
        conn = http.client.HTTPConnection(a.host, a.port, timeout=120)
        while True:
            with lock:
                i = next_index[0]
                if i >= a.requests:
                    break
                next_index[0] += 1
            stream = a.stream_every > 0 and i % a.stream_every == 0
            body = json.dumps({"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": a.max_tokens, "temperature": 0.7,
                               "seed": i, "stream": stream, "pmpd": {"mode": ["pmpd", "high", "low"][i % 3]}})
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
                res = conn.getresponse()
                data = res.read().decode()
                if res.status != 200:
                    raise RuntimeError(f"status {res.status}: {data[:200]}")
                if stream:
                    assert data.rstrip().endswith("data: [DONE]"), data[-200:]
                    final = [json.loads(l[6:]) for l in data.split("\n\n") if l.startswith("data: {") and '"usage"' in l]
                    n = final[-1]["usage"]["completion_tokens"]
                else:
                    n = json.loads(data)["usage"]["completion_tokens"]
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    tokens[0] += n
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    errors.append(str(e))
                conn.close()
                conn = http.client.HTTPConnection(a.host, a.port, timeout=120)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
    print(f"| requests | concurrency | errors | p50 ms | p90 ms | p99 ms | max ms | requests/s | tokens/s |")
    print(f"|---|---|---|---|---|---|---|---|---|")
    print(f"| {a.requests} | {a.concurrency} | {len(errors)} | {q[49]*1e3:.0f} | {q[89]*1e3:.0f} | {q[98]*1e3:.0f} | "
          f"{max(latencies)*1e3:.0f} | {len(latencies)/wall:.1f} | {tokens[0]/wall:.0f} |")
    for e in errors[:5]:
        print("error:", e)
    raise SystemExit(1 if errors else 0)


if __name__ == "__main__":
    main()
