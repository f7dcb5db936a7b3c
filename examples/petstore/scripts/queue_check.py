#!/usr/bin/env python3
"""Calls the pet store's OpenAPI operations through RabbitMQ or NATS from Python, knowing only
docs/queue-protocol.md ("OpenAPI operations"): the request is the operation's request struct as
JSON, credentials travel as metadata headers, and a reply is `sb-http-status` + `content-type` +
body (or `sb-status` for the runtime's own errors).

    petstore-server --port 0 --queue amqp://… --api-key KEY &
    python3 queue_check.py --amqp amqp://… --api-key KEY     # or --nats nats://…

Exits 0 when every check passes and prints one line per check. Needs pika (RabbitMQ) or
nats-py (NATS).
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.parse
import uuid

SERVICE = "petstore.Petstore"


class Reply:
    """A reply frame: lower-case headers, the body, and the content type."""

    def __init__(self, headers, body, content_type):
        self.headers = {k.lower(): v if isinstance(v, str) else v.decode() if isinstance(v, bytes) else str(v)
                        for k, v in (headers or {}).items()}
        self.body = body
        self.content_type = content_type or self.headers.get("content-type")

    def status(self):
        return int(self.headers.get("sb-status", "0"))

    def message(self):
        return urllib.parse.unquote(self.headers.get("sb-status-message", ""))

    def http_status(self):
        return int(self.headers["sb-http-status"])

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Reply(headers={self.headers}, content_type={self.content_type!r}, body={self.body[:200]!r})"


def deadline_header():
    return str(int(time.time() * 1000) + 10_000)


class Amqp:
    def __init__(self, url):
        import pika

        self.pika = pika
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.replies = {}
        self.ch.basic_consume("amq.rabbitmq.reply-to", self._on_reply, auto_ack=True)

    def _on_reply(self, _ch, _method, props, body):
        self.replies[props.correlation_id] = Reply(props.headers, body, props.content_type)

    def call(self, method, request, headers):
        corr = uuid.uuid4().hex
        props = self.pika.BasicProperties(
            reply_to="amq.rabbitmq.reply-to", correlation_id=corr, type=method,
            headers={"sb-deadline": deadline_header(), **headers})
        self.ch.basic_publish("", f"sb.rpc.{SERVICE}", json.dumps(request).encode(), props, mandatory=True)
        end = time.monotonic() + 10
        while corr not in self.replies:
            if time.monotonic() > end:
                raise TimeoutError(f"no reply to {method}")
            self.conn.process_data_events(time_limit=0.1)
        return self.replies.pop(corr)

    def close(self):
        self.conn.close()


class Nats:
    def __init__(self, url):
        import nats

        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(nats.connect(url))

    def call(self, method, request, headers):
        msg = self.loop.run_until_complete(self.nc.request(
            f"sb.rpc.{SERVICE}.{method}", json.dumps(request).encode(), timeout=10,
            headers={"sb-deadline": deadline_header(), **headers}))
        return Reply(msg.headers, msg.data, None)

    def close(self):
        self.loop.run_until_complete(self.nc.close())


def main():
    ap = argparse.ArgumentParser()
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--amqp")
    group.add_argument("--nats")
    ap.add_argument("--api-key", default="secret")
    args = ap.parse_args()
    broker = Amqp(args.amqp) if args.amqp else Nats(args.nats)
    key = {"x-api-key": args.api_key}
    failures = []

    def check(name, cond, reply):
        print(("ok   " if cond else "FAIL ") + name)
        if not cond:
            print(f"     {reply!r}")
            failures.append(name)

    # Ready once the server answers: nobody consuming is an immediate UNAVAILABLE (14) on
    # RabbitMQ (the publish comes back) and "no responders" on NATS.
    end = time.monotonic() + 20
    while True:
        try:
            r = broker.call("ListPets", {"page_size": 5}, {})
            if r.status() != 14:
                break
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > end:
                raise
        time.sleep(0.2)

    check("ListPets: 200, application/json, a page of pets",
          r.status() == 0 and r.http_status() == 200 and r.content_type == "application/json"
          and isinstance(r.json().get("pets"), list), r)

    r = broker.call("CreatePet", {"body": {"name": "Py", "status": "available"}}, {})
    check("CreatePet without the key: UNAUTHENTICATED (16) naming X-API-Key",
          r.status() == 16 and "X-API-Key" in r.message() and not r.body, r)

    r = broker.call("CreatePet", {"body": {"name": "", "status": "available"}}, key)
    check("CreatePet with an empty name: INVALID_ARGUMENT (3) naming /body/name",
          r.status() == 3 and "/body/name" in r.message(), r)

    r = broker.call("CreatePet", {"body": {"name": "Py", "status": "available", "weight_kg": 3.5}}, key)
    ok = r.status() == 0 and r.http_status() == 201 and r.content_type == "application/json"
    pet = r.json() if ok else {}
    check("CreatePet: 201, application/json, the pet with its id",
          ok and pet.get("name") == "Py" and isinstance(pet.get("id"), int), r)

    r = broker.call("GetPet", {"petId": pet.get("id", 1)}, {})
    check("GetPet: 200 with the same pet", r.status() == 0 and r.http_status() == 200 and r.json() == pet, r)

    r = broker.call("GetPet", {"petId": 987654321}, {})
    check("GetPet of a missing pet: 404 with the document's Error body (code 5)",
          r.status() == 0 and r.http_status() == 404 and r.json().get("code") == 5, r)

    r = broker.call("GetPet", {"petId": "seven"}, {})
    check("GetPet with a string id: INVALID_ARGUMENT (3) naming /petId",
          r.status() == 3 and "/petId" in r.message(), r)

    r = broker.call("DeletePet", {"petId": pet.get("id", 1)}, key)
    check("DeletePet: 204, no content type, empty body",
          r.status() == 0 and r.http_status() == 204 and not r.content_type and not r.body, r)

    broker.close()
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
