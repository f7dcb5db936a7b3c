"""A Kafka peer of switchboard's queue protocol, written from docs/queue-protocol.md ("Kafka") only.

Run by tests/queue_kafka.rs (a_python_peer_interoperates_from_the_protocol_doc) while a
`test.queue.v1.Ledger` server (tests/queue/suite.rs) serves on the cluster:

    python3 kafka_peer.py kafka://HOST:PORT RUN

1. publishes an event `Record` (confluent-kafka; the server records `py-RUN`);
2. calls `Echo` through a reply topic of its own and checks the reply;
3. reads the event `rs-RUN` switchboard published, with its CloudEvents headers;
4. reads the dead letter of `rs-poison-RUN` with kafka-python: status, attempts, origin.

Entries are hand-encoded protobuf (field 1: id, field 2: amount). Consumers use a 6 s session
timeout (tansu's first group join takes ~23 s otherwise).
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer

servers = sys.argv[1].split("://", 1)[-1]
run = sys.argv[2]


def varint(n):
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out += bytes([low | 0x80])
        else:
            return out + bytes([low])


def entry(id, amount=0):
    data = id.encode()
    out = b"\x0a" + varint(len(data)) + data
    if amount:
        out += b"\x10" + varint(amount)
    return out


def headers_of(message_headers):
    return {k: (v or b"").decode() for k, v in (message_headers or [])}


producer = Producer({"bootstrap.servers": servers, "acks": "all", "enable.idempotence": True})

# 1. An event in.
producer.produce(
    "sb.event.test.queue.v1.Ledger.Record",
    key=b"py-key",
    value=entry(f"py-{run}"),
    headers={"message-id": str(uuid.uuid4()), "content-type": "application/protobuf", "sb-key": "py-key"},
)
producer.flush(10)
print("event published")

# 2. A unary call through a reply topic of our own, leased before it exists (a call this short
# needs no renewal: a longer-lived peer renews the lease every third of it).
reply_topic = "sb.reply." + uuid.uuid4().hex
producer.produce("sb.reply.leases", key=reply_topic, value=b"30000")
producer.flush(10)
admin = AdminClient({"bootstrap.servers": servers})
admin.create_topics([NewTopic(reply_topic, 1, 1)])[reply_topic].result()
replies = Consumer({"bootstrap.servers": servers, "group.id": reply_topic, "enable.auto.commit": False})
replies.assign([TopicPartition(reply_topic, 0, 0)])
producer.produce(
    "sb.rpc.test.queue.v1.Ledger",
    value=entry(f"py-call-{run}", 42),
    headers={
        "sb-method": "Echo",
        "sb-reply-to": reply_topic,
        "sb-correlation-id": "1",
        "sb-deadline": str(int(time.time() * 1000) + 15000),
    },
)
producer.flush(10)
until = time.time() + 20
while True:
    if time.time() > until:
        sys.exit("no reply to Echo")
    m = replies.poll(1)
    if m is None or m.error():
        continue
    h = headers_of(m.headers())
    if h.get("sb-correlation-id") == "1":
        assert h.get("sb-status", "0") == "0", h
        assert m.value() == entry(f"py-call-{run}", 42), m.value()
        print("unary reply", h)
        break
replies.close()
producer.produce("sb.reply.leases", key=reply_topic, value=None)  # the lease ends
producer.flush(10)
admin.delete_topics([reply_topic])

# 3. An event switchboard published, with the CloudEvents attributes.
events = Consumer(
    {
        "bootstrap.servers": servers,
        "group.id": "py-events-" + uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
    }
)
events.subscribe(["sb.event.test.queue.v1.Ledger.Record"])
until = time.time() + 30
while True:
    if time.time() > until:
        sys.exit(f"switchboard's event rs-{run} not seen")
    m = events.poll(1)
    if m is None or m.error() or m.value() != entry(f"rs-{run}"):
        continue
    h = headers_of(m.headers())
    assert h["ce_specversion"] == "1.0", h
    assert h["ce_type"] == "test.queue.v1.Ledger.Record", h
    assert h["ce_id"] == h["message-id"], h
    assert h["ce_source"] == "/switchboard/test.queue.v1.Ledger", h
    assert h["content-type"] == "application/protobuf", h
    assert m.key() == h["message-id"].encode(), (m.key(), h)
    print("switchboard's event", h)
    break
events.close()

# 4. The dead letter, with kafka-python.
dead = KafkaConsumer(
    "sb.dlq.test.queue.v1.Ledger.Poison",
    bootstrap_servers=servers,
    group_id="py-dlq-" + uuid.uuid4().hex,
    auto_offset_reset="earliest",
    consumer_timeout_ms=40000,
    session_timeout_ms=6000,
    heartbeat_interval_ms=2000,
)
for m in dead:
    if m.value != entry(f"rs-poison-{run}"):
        continue
    h = headers_of(m.headers)
    assert h["sb-status"] == "13", h
    assert h["sb-status-message"] == f"cannot record rs-poison-{run}", h
    assert h["sb-attempt"] == "3", h
    assert h["sb-origin-topic"] == "sb.event.test.queue.v1.Ledger.Poison", h
    int(h["sb-origin-partition"]), int(h["sb-origin-offset"])
    print("dead letter", h)
    break
else:
    sys.exit(f"the dead letter of rs-poison-{run} not seen")
dead.close()
print("OK")
