"""A nats-py client that finds a switchboard service through NATS micro discovery (ADR-32) and
calls it, knowing only docs/queue-protocol.md. Run by runtime/tests/nats_micro.rs:

    python3 nats_micro_peer.py <nats url> <micro name> <endpoint name> <text>

1. `$SRV.PING.<name>`: every answer within 0.5 s (one per replica), parsed with nats-py's own
   micro types; prints `ping: <n> replicas`.
2. `$SRV.INFO.<name>`: the first answer; the endpoint's subject, queue group and the service's
   body encoding (metadata `switchboard.content_type`).
3. Calls the endpoint's subject with a JSON body (the service takes `application/json`) and an
   `sb-deadline` header; prints `answer: <body>` (a reply without `sb-status`, or `0`, succeeded).
4. `$SRV.STATS.<name>`: every answer, parsed; the requests of the endpoint summed.
"""

import asyncio
import json
import sys
import time

import nats
from nats.micro.service import ServiceInfo, ServicePing, ServiceStats


async def gather(nc, subject, wait=0.5):
    """Every answer to an empty request on `subject` within `wait` seconds."""
    inbox = nc.new_inbox()
    answers = []
    sub = await nc.subscribe(inbox, cb=None)
    await nc.publish(subject, b"", reply=inbox)
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            msg = await sub.next_msg(timeout=left)
        except nats.errors.TimeoutError:
            break
        if msg.headers and msg.headers.get("Status"):
            continue  # no responders
        answers.append(json.loads(msg.data))
    await sub.unsubscribe()
    return answers


async def main(url, name, endpoint, text):
    nc = await nats.connect(url)

    pings = [ServicePing.from_dict(p) for p in await gather(nc, f"$SRV.PING.{name}")]
    print(f"ping: {len(pings)} replicas: {', '.join(sorted(p.id for p in pings))} (version {pings[0].version})")

    msg = await nc.request(f"$SRV.INFO.{name}", b"", timeout=5)
    info = ServiceInfo.from_dict(json.loads(msg.data))
    ep = next(e for e in info.endpoints if e.name == endpoint)
    content_type = info.metadata["switchboard.content_type"]
    print(f"info: {ep.name} on {ep.subject} in group {ep.queue_group} ({content_type})")
    if content_type != "application/json":
        raise SystemExit(f"this peer sends JSON; the service takes {content_type}")

    deadline = str(int(time.time() * 1000) + 5000)
    reply = await nc.request(ep.subject, json.dumps(text).encode(), timeout=5,
                             headers={"sb-deadline": deadline, "content-type": content_type})
    status = (reply.headers or {}).get("sb-status", "0")
    if status != "0":
        raise SystemExit(f"the call failed: sb-status {status}: {(reply.headers or {}).get('sb-status-message')}")
    print(f"answer: {reply.data.decode()}")

    stats = [ServiceStats.from_dict(s) for s in await gather(nc, f"$SRV.STATS.{name}")]
    requests = sum(e.num_requests for s in stats for e in s.endpoints if e.name == endpoint)
    print(f"stats: parsed {len(stats)} answers; {endpoint}: {requests} requests")

    await nc.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
