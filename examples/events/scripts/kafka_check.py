#!/usr/bin/env python3
"""shop.orders.v1.Orders over Kafka, written from docs/queue-protocol.md alone.

A non-Rust peer of switchboard's `events-server` (examples/events) that follows the document's
"Kafka" section and the general sections it refers to (Headers, Request-reply, Events):

  (a) publishes `Placed` events as a plain confluent-kafka producer (protobuf bodies, record
      key = order id, `message-id`, `content-type`, `sb-key`): two events of one order (in
      order: the later amount wins) plus a duplicate of the first (same `message-id`: not run
      again);
  (b) calls the unary `GetOrder` through request-reply (a reply topic of its own, `sb-reply-to`,
      `sb-correlation-id`, `sb-deadline`, `sb-status`) until the server has handled those
      events, and checks the error statuses (NOT_FOUND, an unknown method, a wrong content type);
  (c) reads, in a consumer group of its own, the events `events-publish` published (its output
      is the --published file) and checks their CloudEvents binary-mode headers (`ce_specversion`,
      `ce_id`, `ce_source`, `ce_type`, `ce_time`), `content-type`, `message-id`, `sb-key`, the
      record key (= order id) and partition, and the body;
  (d) publishes a declined order (negative amount: the server fails it on every attempt) and an
      undecodable one, then reads the dead-letter topic with kafka-python and checks the
      dead-letter headers (`sb-origin-topic` / `-partition` / `-offset`, `sb-status`,
      `sb-status-message`, `sb-attempt`, no `sb-due`).

  kafka_check.py --kafka kafka://127.0.0.1:9092 --published FILE [--max-attempts 3]

The server: `events-server --broker URL` (its --max-attempts must match). FILE: the output of
`events-publish --broker URL --count N` (`published order_id=… message_id=… amount=…` lines).
The .proto is compiled at run time with grpc_tools.protoc (grpcio-tools). Prints `ok   <check>` /
`FAIL <check>: <why>` and `N passed, M failed`; exits 1 on any mismatch (or a missing module).
"""
import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(EXAMPLE))

SERVICE = "shop.orders.v1.Orders"
EVENT_TOPIC = f"sb.event.{SERVICE}.Placed"   # events of method Placed
DLQ_TOPIC = f"sb.dlq.{SERVICE}.Placed"       # its dead letters
RPC_TOPIC = f"sb.rpc.{SERVICE}"              # requests of every method
PROTOBUF = "application/protobuf"

# Status codes (gRPC numbering), as the document uses them.
OK, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, UNIMPLEMENTED = 0, 3, 5, 9, 12

# ---- results -----------------------------------------------------------------------------------

passed, failed = 0, 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")
    sys.stdout.flush()
    return cond


def fatal(why):
    print(f"FAIL {why}")
    sys.exit(1)


def section(title):
    print(f"-- {title}")
    sys.stdout.flush()


# ---- the messages: the example's .proto, compiled now ------------------------------------------

def load_messages():
    """Compiles orders.proto (and the switchboard/options.proto it imports; google/protobuf
    comes with grpcio-tools) and returns the orders_pb2 module."""
    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        fatal("grpcio-tools not installed (pip install grpcio-tools): it compiles the .proto")
    protos = os.path.join(EXAMPLE, "proto")
    options = os.path.join(REPO, "codegen", "proto")  # switchboard/options.proto, the copy for protoc
    out = tempfile.mkdtemp(prefix="kafka-check-")
    subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I", protos, "-I", options,
                           f"--python_out={out}", "shop/orders/v1/orders.proto", "switchboard/options.proto"])
    sys.path.insert(0, out)
    return importlib.import_module("shop.orders.v1.orders_pb2")


# ---- the document's encodings --------------------------------------------------------------------

def pct_decode(value):
    """`sb-status-message` is percent-encoded (every byte outside 0x20-0x7E, and `%`)."""
    b, raw, i = value.encode("utf-8"), bytearray(), 0
    while i < len(b):
        if b[i] == 0x25 and i + 3 <= len(b):
            try:
                raw.append(int(b[i + 1:i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        raw.append(b[i])
        i += 1
    return raw.decode("utf-8", "replace")


def now_ms():
    return int(time.time() * 1000)


def headers_of(pairs):
    """Record headers as a dict of str (values are UTF-8 strings); a repeated name keeps its first."""
    out = {}
    for k, v in pairs or []:
        out.setdefault(k, v.decode("utf-8") if v is not None else None)
    return out


def bootstrap(url):
    """kafka://host:port[,host:port…][?query] -> host:port[,…]"""
    if not url.startswith("kafka://"):
        fatal(f"--kafka wants a kafka:// URL, got {url!r}")
    return url[len("kafka://"):].split("?", 1)[0].rstrip("/")


# ---- Kafka ---------------------------------------------------------------------------------------

class Kafka:
    def __init__(self, servers, pb):
        from confluent_kafka import Consumer, Producer, TopicPartition
        from confluent_kafka.admin import AdminClient, NewTopic
        self.servers, self.pb = servers, pb
        self.TopicPartition = TopicPartition
        # Events: acks=all and the idempotent producer, as the document's publishers do.
        self.producer = Producer({"bootstrap.servers": servers, "acks": "all", "enable.idempotence": True})
        self.admin = AdminClient({"bootstrap.servers": servers})
        # Request-reply step 1: a reply topic of our own, 1 partition, read by assignment (no group).
        self.reply_topic = "sb.reply." + uuid.uuid4().hex
        fs = self.admin.create_topics([NewTopic(self.reply_topic, num_partitions=1, replication_factor=1)])
        fs[self.reply_topic].result(10)
        self.replies = Consumer({"bootstrap.servers": servers, "group.id": self.reply_topic,
                                 "enable.auto.commit": False, "fetch.wait.max.ms": 50})
        self.replies.assign([TopicPartition(self.reply_topic, 0, 0)])
        self.waiting = {}   # correlation id -> reply record
        self.n = 0
        self.ConsumerClass = Consumer

    def close(self):
        self.replies.close()
        try:
            self.admin.delete_topics([self.reply_topic])[self.reply_topic].result(5)
        except Exception:  # noqa: BLE001 - best effort, as the document's callers do
            pass

    def partitions(self, topic):
        md = self.admin.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return 0
        return len(t.partitions)

    def produce(self, topic, value, key=None, headers=None):
        """Produces one record and waits for the broker: returns (partition, offset)."""
        done = {}

        def delivered(err, msg):
            done["err"], done["msg"] = err, msg

        self.producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
        self.producer.flush(15)
        if done.get("err") is not None or "msg" not in done:
            fatal(f"producing to {topic}: {done.get('err') or 'no delivery report in 15 s'}")
        return done["msg"].partition(), done["msg"].offset()

    def publish_placed(self, order_id, amount, customer="py", message_id=None, body=None):
        """An event (docs: Kafka, "Events"): to sb.event.S.M, record key = the `sb-key`,
        `message-id` (a UUID), `content-type`, and `sb-method` (optional: the topic names it)."""
        message_id = message_id or str(uuid.uuid4())
        if body is None:
            body = self.pb.OrderPlaced(order_id=order_id, customer=customer, amount=amount).SerializeToString()
        headers = [("message-id", message_id), ("content-type", PROTOBUF), ("sb-key", order_id),
                   ("sb-method", "Placed")]
        partition, offset = self.produce(EVENT_TOPIC, body, key=order_id.encode(), headers=headers)
        return message_id, partition, offset

    def call(self, method, body, timeout=10.0, headers=None):
        """A unary call (docs: Kafka, "Request-reply"): produce to sb.rpc.S without a key, with
        `sb-method`, `sb-reply-to`, `sb-correlation-id`, `sb-deadline`; take the reply with our
        correlation id off our reply topic. Returns (headers, value), or None at the deadline."""
        self.n += 1
        corr = f"py-{uuid.uuid4().hex[:12]}-{self.n}"
        deadline = now_ms() + int(timeout * 1000)
        h = [("sb-method", method), ("sb-reply-to", self.reply_topic), ("sb-correlation-id", corr),
             ("sb-deadline", str(deadline))] + list((headers or {}).items())
        self.produce(RPC_TOPIC, body, headers=h)
        while now_ms() < deadline:
            if corr in self.waiting:
                return self.waiting.pop(corr)
            m = self.replies.poll(0.2)
            if m is None or m.error():
                continue
            rh = headers_of(m.headers())
            self.waiting[rh.get("sb-correlation-id")] = (rh, m.value() or b"")
        return None

    def get_order(self, order_id, timeout=10.0):
        """GetOrder: (status, Order or None, headers)."""
        r = self.call("GetOrder", self.pb.GetOrderRequest(order_id=order_id).SerializeToString(), timeout)
        if r is None:
            return None, None, {}
        h, value = r
        status = int(h.get("sb-status") or 0)
        if status != OK:
            return status, None, h
        order = self.pb.Order()
        order.ParseFromString(value)
        return OK, order, h

    def read_group(self, topic, group, want, limit):
        """Reads `topic` from the beginning in consumer group `group` (a group of its own:
        the server's group `sb.event.S` is not disturbed) until `want(records)` holds or `limit`
        seconds pass. session.timeout.ms 6000, as switchboard's servers use: librdkafka's
        default (45 s) makes the first join slow on some brokers (tansu: half the timeout)."""
        c = self.ConsumerClass({"bootstrap.servers": self.servers, "group.id": group,
                                "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                                "fetch.wait.max.ms": 100})
        c.subscribe([topic])
        records, end = [], time.monotonic() + limit
        try:
            while time.monotonic() < end and not want(records):
                m = c.poll(0.2)
                if m is None or m.error():
                    continue
                records.append(m)
        finally:
            c.close()
        return records


# ---- the checks ----------------------------------------------------------------------------------

def read_published(path):
    """events-publish's lines: `published order_id=… message_id=… amount=…`."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"published order_id=(\S+) message_id=(\S+) amount=(-?\d+)", line.strip())
            if m:
                out.append({"order_id": m[1], "message_id": m[2], "amount": int(m[3])})
    return out


def wait_for_order(k, order_id, done, limit=30.0):
    """Calls GetOrder until `done(order)` holds (the server handled the events): the last answer."""
    end = time.monotonic() + limit
    last = (None, None, {})
    while time.monotonic() < end:
        last = k.get_order(order_id)
        if last[0] == OK and done(last[1]):
            return last
        time.sleep(0.2)
    return last


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kafka", required=True, help="kafka://host:port of the broker events-server uses")
    ap.add_argument("--published", required=True, help="the output of events-publish (its `published …` lines)")
    ap.add_argument("--max-attempts", type=int, default=3, help="events-server's --max-attempts (default 3)")
    args = ap.parse_args()
    for mod in ("confluent_kafka", "kafka"):
        try:
            importlib.import_module(mod)
        except ImportError:
            fatal(f"python module {mod} not installed (pip install confluent-kafka kafka-python)")
    pb = load_messages()
    servers = bootstrap(args.kafka)
    published = read_published(args.published)
    if not published:
        fatal(f"no `published order_id=… message_id=… amount=…` lines in {args.published}")
    started = time.monotonic()
    k = Kafka(servers, pb)
    run = uuid.uuid4().hex[:8]
    try:
        # ---- (a) events from a plain producer ----------------------------------------------------
        section("(a) Placed events from confluent-kafka (protobuf bodies, key = order id)")
        order = f"py-{run}-1"
        first_id, p1, _ = k.publish_placed(order, 100)
        _, p_dup, _ = k.publish_placed(order, 100, message_id=first_id)     # a duplicate: not run again
        _, p2, _ = k.publish_placed(order, 200)                             # same key, later: wins
        other = f"py-{run}-2"
        k.publish_placed(other, 300, customer="py-other")
        check("one key, one partition (record key = order id)", p1 == p_dup == p2, (p1, p_dup, p2))
        n = k.partitions(EVENT_TOPIC)
        check(f"{EVENT_TOPIC}: the partition is CRC32(key) % partitions ({n})",
              n > 0 and p1 == zlib.crc32(order.encode()) % n, (p1, n))

        # ---- (b) request-reply: GetOrder ---------------------------------------------------------
        section("(b) GetOrder through request-reply (reply topic, correlation id, deadline, status)")
        status, got, h = wait_for_order(k, order, lambda o: o.amount == 200)
        check(f"GetOrder({order}) answered: no sb-status (or 0) and an Order", status == OK and got is not None, (status, h))
        if got is not None:
            check("the events of one key were handled in order: the later amount (200) stands",
                  got.amount == 200 and got.accepted, got)
            check("the duplicate (same message-id) did not run: 2 handler runs for 3 records",
                  got.attempts == 2, f"attempts={got.attempts}")
            check("the handler saw the key as its sb-key metadata", got.key == order, got.key)
        status, got, _ = wait_for_order(k, other, lambda o: True)
        check(f"GetOrder({other}): handled (customer py-other, amount 300)",
              status == OK and got.customer == "py-other" and got.amount == 300, got)
        r = k.call("GetOrder", pb.GetOrderRequest(order_id=f"py-{run}-never ✗").SerializeToString())
        h, body = r if r is not None else ({}, b"")
        check("GetOrder of an unknown order: sb-status 5 (NOT_FOUND), percent-encoded message, empty body",
              h.get("sb-status") == str(NOT_FOUND) and "never ✗" in pct_decode(h.get("sb-status-message", ""))
              and "%E2%9C%97" in h.get("sb-status-message", "") and body == b"", r)
        check("every reply frame carries our sb-correlation-id",
              (h.get("sb-correlation-id") or "").startswith("py-"), h)
        r = k.call("NoSuchMethod", b"")
        check("an unknown method: sb-status 12 (UNIMPLEMENTED)",
              r is not None and int(r[0].get("sb-status") or 0) == UNIMPLEMENTED, r)
        r = k.call("GetOrder", pb.GetOrderRequest(order_id=order).SerializeToString(),
                   headers={"content-type": "application/json"})
        check("a content-type other than the service's: sb-status 3 (INVALID_ARGUMENT)",
              r is not None and int(r[0].get("sb-status") or 0) == INVALID_ARGUMENT, r)
        r = k.call("GetOrder", pb.GetOrderRequest(order_id=order).SerializeToString(),
                   headers={"content-type": PROTOBUF})
        check("a request with content-type: the reply carries it too",
              r is not None and r[0].get("content-type") == PROTOBUF and not r[0].get("sb-status"), r)
        for p in published:
            status, got, _ = wait_for_order(k, p["order_id"], lambda o: True)
            if not check(f"GetOrder({p['order_id']}) (published by events-publish): handled, amount {p['amount']}",
                         status == OK and got.amount == p["amount"] and got.attempts == 1, (status, got)):
                break

        # ---- (c) events a switchboard client published -------------------------------------------
        section(f"(c) the {len(published)} events of events-publish, read in a group of our own")
        wanted = {p["order_id"]: p for p in published}
        records = k.read_group(EVENT_TOPIC, f"kafka-check-{run}", lambda rs: wanted.keys() <= {
            (m.key() or b"").decode() for m in rs}, 30)
        seen = {}
        for m in records:
            key = (m.key() or b"").decode()
            if key in wanted and key not in seen:
                seen[key] = m
        check(f"all {len(wanted)} found on {EVENT_TOPIC}, by record key = order id",
              seen.keys() == wanted.keys(), sorted(set(wanted) - set(seen)))
        source, ce_type = f"/switchboard/{SERVICE}", f"{SERVICE}.Placed"
        rfc3339_ms = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
        problems = []
        for key, m in seen.items():
            h, p = headers_of(m.headers()), wanted[key]
            ev = pb.OrderPlaced()
            ev.ParseFromString(m.value() or b"")
            want = {"ce_specversion": "1.0", "ce_id": p["message_id"], "ce_source": source, "ce_type": ce_type,
                    "message-id": p["message_id"], "content-type": PROTOBUF, "sb-key": key}
            for name, value in want.items():
                if h.get(name) != value:
                    problems.append(f"{key}: {name} = {h.get(name)!r}, want {value!r}")
            t = h.get("ce_time") or ""
            if not rfc3339_ms.match(t):
                problems.append(f"{key}: ce_time {t!r} is not RFC 3339 UTC with milliseconds")
            else:
                when = datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
                if not (time.time() - 3600 < when <= time.time() + 60):
                    problems.append(f"{key}: ce_time {t} is not a recent publish time")
            if ev.order_id != key or ev.amount != p["amount"]:
                problems.append(f"{key}: body {ev} does not match")
            if n and m.partition() != zlib.crc32(key.encode()) % n:
                problems.append(f"{key}: partition {m.partition()}, not CRC32(key) % {n}")
        check("CloudEvents binary mode: ce_specversion 1.0, ce_id = message-id, ce_source "
              f"{source}, ce_type {ce_type}, ce_time RFC 3339 (ms, UTC)", not [x for x in problems if "ce_" in x],
              problems)
        check("content-type application/protobuf, sb-key = record key = order id, the body decodes",
              not [x for x in problems if "ce_" not in x], problems)

        # ---- (d) dead letters ----------------------------------------------------------------------
        section(f"(d) a declined order and an undecodable event end in {DLQ_TOPIC} (read with kafka-python)")
        declined = f"py-{run}-declined"
        d_id, d_part, d_off = k.publish_placed(declined, -500)
        garbage = f"py-{run}-garbage"
        g_id, g_part, g_off = k.publish_placed(garbage, 0, body=b"\xff\xff\xff not protobuf")
        # The last attempt is a handler run: once GetOrder counts them all, the dead letter follows.
        status, got, _ = wait_for_order(k, declined, lambda o: o.attempts >= args.max_attempts)
        check(f"GetOrder({declined}): not accepted after {args.max_attempts} handler runs",
              status == OK and not got.accepted and got.attempts == args.max_attempts, (status, got))
        found = read_dead_letters(servers, f"kafka-check-dlq-{run}", {d_id, g_id}, 30)
        check("both dead letters found by message-id", set(found) == {d_id, g_id}, sorted(found))
        if d_id in found:
            rec, h = found[d_id]
            expect = {"sb-origin-topic": EVENT_TOPIC, "sb-origin-partition": str(d_part),
                      "sb-origin-offset": str(d_off), "sb-status": str(FAILED_PRECONDITION),
                      "sb-attempt": str(args.max_attempts), "message-id": d_id, "sb-key": declined,
                      "content-type": PROTOBUF}
            bad = {n: (h.get(n), v) for n, v in expect.items() if h.get(n) != v}
            check(f"declined order: origin topic/partition/offset, sb-status 9, sb-attempt {args.max_attempts}, "
                  "its own headers", not bad, bad)
            check("declined order: sb-status-message (percent-decoded) is the handler's error",
                  "declined" in pct_decode(h.get("sb-status-message", "")), h.get("sb-status-message"))
            check("declined order: no sb-due, the value as published",
                  "sb-due" not in h and rec.value == pb.OrderPlaced(order_id=declined, customer="py", amount=-500).SerializeToString(),
                  h)
            check("declined order: record key = order id", rec.key == declined.encode(), rec.key)
        if g_id in found:
            _, h = found[g_id]
            expect = {"sb-origin-topic": EVENT_TOPIC, "sb-origin-partition": str(g_part),
                      "sb-origin-offset": str(g_off), "sb-status": str(INVALID_ARGUMENT), "sb-attempt": "1"}
            bad = {n: (h.get(n), v) for n, v in expect.items() if h.get(n) != v}
            check("undecodable event: dead-lettered at once (sb-status 3, sb-attempt 1), origin headers", not bad, bad)
    finally:
        k.close()
    print(f"{passed} passed, {failed} failed ({time.monotonic() - started:.1f} s)")
    sys.exit(1 if failed else 0)


def read_dead_letters(servers, group, ids, limit):
    """Reads the dead-letter topic with kafka-python in a group of our own (the document: other
    readers than Broker::dead_letters use a group of their own) until every message id in `ids`
    is found: {message-id: (record, headers)}."""
    from kafka import KafkaConsumer
    c = KafkaConsumer(DLQ_TOPIC, bootstrap_servers=servers.split(","), group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=6000, heartbeat_interval_ms=500, fetch_max_wait_ms=100,
                      metadata_max_age_ms=1000)
    found, end = {}, time.monotonic() + limit
    try:
        while time.monotonic() < end and not ids <= found.keys():
            for records in c.poll(timeout_ms=200).values():
                for rec in records:
                    h = headers_of(rec.headers)
                    if h.get("message-id") in ids:
                        found[h["message-id"]] = (rec, h)
    finally:
        c.close()
    return found


if __name__ == "__main__":
    main()
