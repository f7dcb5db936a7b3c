#!/usr/bin/env python3
"""Calls interop-server's REST side with Python's standard library only, as any HTTP client would.

Usage: python3 rest_check.py http://127.0.0.1:PORT   (exit 0 when every check passes)
"""
import json
import sys
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/")
failures = []


def post(path, body, headers=None):
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(BASE + path, data=data, method="POST",
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def check(name, cond, detail):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    if not cond:
        failures.append(name)


svc = "/grpc.testing.TestService"
status, _, body = post(svc + "/UnaryCall", {"responseSize": 5})
check("unary payload", (status, json.loads(body)) == (200, {"payload": {"body": "AAAAAAA="}}), (status, body))

status, _, body = post(svc + "/UnaryCall", {"responseStatus": {"code": 5, "message": "gone"}})
check("status 5 is HTTP 404", status == 404 and json.loads(body)["message"] == "gone" and json.loads(body)["code"] == 5,
      (status, body))

status, _, body = post(svc + "/UnaryCall", {"response_size": 2, "fill_username": True})
check("proto field names accepted", status == 200 and json.loads(body)["payload"]["body"] == "AAA=", (status, body))

status, _, body = post(svc + "/UnaryCall", {"responseSize": "many"})
check("wrong type is 400 naming the field", status == 400 and "responseSize" in json.loads(body)["message"], (status, body))

status, headers, body = post(svc + "/StreamingOutputCall", {"responseParameters": [{"size": 1}, {"size": 2}]})
lines = [json.loads(line) for line in body.splitlines() if line.strip()]
check("server streaming as NDJSON", status == 200 and headers["content-type"] == "application/x-ndjson"
      and [l["result"]["payload"]["body"] for l in lines] == ["AA==", "AAA="], (status, body))

status, headers, body = post(svc + "/StreamingOutputCall", {"responseParameters": [{"size": 1}]},
                             {"accept": "text/event-stream"})
check("server streaming as SSE", headers["content-type"] == "text/event-stream" and body.startswith("data: "), body)

status, _, body = post(svc + "/UnimplementedCall", {})
check("UNIMPLEMENTED is 501", status == 501 and json.loads(body)["code"] == 12, (status, body))

req = urllib.request.Request(BASE + "/nope", method="GET")
try:
    urllib.request.urlopen(req, timeout=10)
    check("unknown path is 404", False, "200")
except urllib.error.HTTPError as e:
    check("unknown path is 404", e.code == 404, e.code)

with urllib.request.urlopen(BASE + "/openapi.json", timeout=10) as resp:
    doc = json.loads(resp.read())
check("openapi.json", doc.get("openapi", "").startswith("3.1") and svc + "/UnaryCall" in doc["paths"], list(doc.get("paths", {}))[:3])

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
