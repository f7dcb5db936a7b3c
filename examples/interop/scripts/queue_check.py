#!/usr/bin/env python3
"""grpc.testing.TestService through a message broker, written from docs/queue-protocol.md alone.

A non-Rust program following the document: it calls switchboard's interop-server through
RabbitMQ (pika) or NATS (nats-py), and it serves TestService itself so that the Rust
interop-client can call it.

  queue_check.py client --amqp amqp://guest:guest@127.0.0.1:5672/%2f
  queue_check.py client --nats nats://127.0.0.1:4222
      Calls TestService (served by `interop-server --amqp/--nats URL`) and checks every reply
      against the document. Prints `ok   <check>` / `FAIL <check>: <why>` and
      `N passed, M failed`; exits 1 on any mismatch.

  queue_check.py server --amqp URL | --nats URL
      Serves TestService (EmptyCall, UnaryCall, StreamingOutputCall; errors through
      response_status; the other methods answer UNIMPLEMENTED) until killed. Prints
      `ready` once it consumes. `interop-client --amqp/--nats URL` must pass against it.

Messages are protobuf classes compiled at run time with grpc_tools.protoc from the interop
protos in ../shared/corpus/grpc-interop (override with --protos DIR). Without them, or
without pika / nats-py / grpcio-tools, the script says why and exits 0 (skipped).
"""
import argparse
import asyncio
import base64
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTOS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "shared", "corpus", "grpc-interop"))

SERVICE = "grpc.testing.TestService"
UNSERVED = "grpc.testing.UnimplementedService"
PROTOBUF = "application/protobuf"
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING_BIN = "x-grpc-test-echo-trailing-bin"

# Status codes (gRPC numbering), as the document uses them.
OK, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, UNIMPLEMENTED = 0, 2, 3, 4, 12


def skip(why):
    print(f"skipped: {why}")
    sys.exit(0)


# ---- messages --------------------------------------------------------------------------------

def load_messages(root):
    """Compiles empty.proto and messages.proto (package grpc.testing) and returns the modules."""
    src = os.path.join(root, "grpc", "testing")
    if not os.path.isfile(os.path.join(src, "messages.proto")):
        skip(f"interop protos not found in {src} (../shared/corpus beside the checkout, or --protos DIR)")
    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        skip("grpcio-tools not installed (pip install grpcio-tools): needed to compile the protos")
    out = tempfile.mkdtemp(prefix="queue-check-")
    subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I", src, f"--python_out={out}",
                           "empty.proto", "messages.proto"])
    mods = {}
    for name in ("empty_pb2", "messages_pb2"):
        spec = importlib.util.spec_from_file_location(name, os.path.join(out, name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        mods[name] = mod
    shutil.rmtree(out, ignore_errors=True)  # loaded: the files are no longer needed
    return mods["empty_pb2"], mods["messages_pb2"]


# ---- the document's encodings ----------------------------------------------------------------

def pct_encode(text):
    """`sb-status-message`: UTF-8, every byte outside 0x20-0x7E, and `%`, as %XX."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in text.encode("utf-8"))


def pct_decode(value):
    """Reverses pct_encode; an invalid escape stays as it is."""
    b, raw, i = value.encode("utf-8"), bytearray(), 0
    hexdigits = b"0123456789abcdefABCDEF"
    while i < len(b):
        if b[i] == 0x25 and i + 3 <= len(b) and b[i + 1] in hexdigits and b[i + 2] in hexdigits:
            raw.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            raw.append(b[i])
            i += 1
    return raw.decode("utf-8", "replace")


def now_ms():
    return int(time.time() * 1000)


def text(v):
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)


class Frame:
    """One message as received: headers (lower-case names), body, and the content type (the
    RabbitMQ `content_type` property, or the NATS `content-type` header)."""

    def __init__(self, headers, body, content_type):
        self.headers, self.body, self.content_type = headers, body, content_type

    def get(self, name):
        return self.headers.get(name)

    def __repr__(self):
        shown = {k: v for k, v in self.headers.items()}
        return f"Frame({shown}, {len(self.body)} bytes, content_type={self.content_type!r})"


# ---- RabbitMQ --------------------------------------------------------------------------------

class Amqp:
    """Caller side over RabbitMQ: direct reply-to on one BlockingConnection."""

    name = "RabbitMQ"

    def __init__(self, url):
        import pika
        self.pika = pika
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.frames, self.returned, self.n = {}, set(), 0
        self.ch.add_on_return_callback(self._on_return)
        self.ch.basic_consume("amq.rabbitmq.reply-to", self._on_reply, auto_ack=True)

    def _on_reply(self, _ch, _method, props, body):
        headers = {k.lower(): text(v) for k, v in (props.headers or {}).items()}
        self.frames.setdefault(props.correlation_id, []).append(Frame(headers, body, props.content_type))

    def _on_return(self, _ch, _method, props, _body):
        self.returned.add(props.correlation_id)

    def send(self, method, body, headers=None, service=SERVICE, message_id=None, deadline=None,
             content_type=PROTOBUF, expiration=True, method_header=None):
        """Publishes a request: the method in the `type` property (and `method_header`, if given,
        as an `sb-method` header), optional content type, message id and deadline."""
        self.n += 1
        corr = f"py-{uuid.uuid4().hex[:8]}-{self.n}"
        hdrs = dict(headers or {})
        if method_header is not None:
            hdrs["sb-method"] = method_header
        if deadline is not None:
            hdrs["sb-deadline"] = str(deadline)
        props = self.pika.BasicProperties(
            reply_to="amq.rabbitmq.reply-to", correlation_id=corr, type=method, content_type=content_type,
            message_id=message_id, headers=hdrs or None,
            # "RabbitMQ requests also carry the remaining time as the expiration property"
            expiration=str(max(1, deadline - now_ms())) if (expiration and deadline) else None)
        self.ch.basic_publish("", f"sb.rpc.{service}", body, props, mandatory=True)
        return corr

    def wait(self, corr, timeout=10.0, stream=False):
        """The frames of call `corr` (unary: its one frame; stream: up to the end frame), or
        "unroutable" (basic.return)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.conn.process_data_events(time_limit=0.05)
            if corr in self.returned:
                return "unroutable"
            frames = self.frames.get(corr, [])
            if frames and (not stream or "sb-status" in frames[-1].headers):
                return frames
        return self.frames.get(corr, [])

    def close(self):
        self.conn.close()


# ---- NATS ------------------------------------------------------------------------------------

class Nats:
    """Caller side over NATS: one subscription to `<inbox>.*`, each call replying to
    `<inbox>.<correlation id>`."""

    name = "NATS"

    def __init__(self, url):
        import nats
        self.loop = asyncio.new_event_loop()
        self.nc = self.run(nats.connect(url, allow_reconnect=False, connect_timeout=5))
        self.inbox = self.nc.new_inbox()
        self.frames, self.n = {}, 0
        self.run(self.nc.subscribe(self.inbox + ".*", cb=self._on_msg))
        self.run(self.nc.flush())

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    async def _on_msg(self, msg):
        corr = msg.subject.rsplit(".", 1)[1]
        headers = {k.lower(): text(v) for k, v in (msg.headers or {}).items()}
        self.frames.setdefault(corr, []).append(Frame(headers, msg.data, headers.get("content-type")))

    def send(self, method, body, headers=None, service=SERVICE, message_id=None, deadline=None,
             content_type=None, expiration=True, method_header=None):
        """Publishes a request to `sb.rpc.S.<method>` (the method is the subject's last token; an
        `sb-method` header only if `method_header` is given), headers only when there is
        something to say."""
        self.n += 1
        corr = f"py{uuid.uuid4().hex[:8]}{self.n}"
        hdrs = dict(headers or {})
        if method_header is not None:
            hdrs["sb-method"] = method_header
        if deadline is not None:
            hdrs["sb-deadline"] = str(deadline)
        if content_type is not None:
            hdrs["content-type"] = content_type
        if message_id is not None:
            hdrs["Nats-Msg-Id"] = message_id
        self.run(self.nc.publish(f"sb.rpc.{service}.{method}", body, reply=f"{self.inbox}.{corr}",
                                 headers=hdrs or None))
        self.run(self.nc.flush())
        return corr

    def wait(self, corr, timeout=10.0, stream=False):
        """The frames of call `corr` (unary: its one frame; stream: up to the end frame), or
        "unroutable" (no responders)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.run(asyncio.sleep(0.02))
            frames = self.frames.get(corr, [])
            if frames and frames[0].get("status") == "503" and not frames[0].body:
                return "unroutable"
            if frames and (not stream or "sb-status" in frames[-1].headers):
                return frames
        return self.frames.get(corr, [])

    def request(self, method, body, service=SERVICE):
        """The document's nc.request() example, as written there."""
        return self.run(self.nc.request(f"sb.rpc.{service}.{method}", body, timeout=5,
                                        headers={"sb-deadline": str(now_ms() + 5000)}))

    def close(self):
        self.run(self.nc.close())
        self.loop.close()


# ---- client checks ---------------------------------------------------------------------------

class Checks:
    def __init__(self, broker):
        self.broker, self.passed, self.failed = broker, 0, 0

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   [{self.broker}] {name}")
        else:
            self.failed += 1
            print(f"FAIL [{self.broker}] {name}: {detail}")
        return cond


def unary_status(frames):
    """A unary call's status: its one frame's `sb-status`, "0" when absent (a success)."""
    if not isinstance(frames, list) or len(frames) != 1:
        return None
    return frames[0].get("sb-status") or "0"


def stream_status(frames):
    if not isinstance(frames, list) or not frames:
        return None
    return frames[-1].get("sb-status")


def payload_size(M, frames):
    """The payload size of a successful UnaryCall reply, else a description of what came."""
    if unary_status(frames) != "0":
        return repr(frames)
    return len(M.SimpleResponse.FromString(frames[0].body).payload.body)


def run_client(t, Empty, M):
    c = Checks(t.name)
    deadline = lambda ms=5000: now_ms() + ms  # noqa: E731

    # Wait for the server: it may still be starting.
    for _ in range(100):
        frames = t.wait(t.send("EmptyCall", Empty().SerializeToString(), deadline=deadline(2000)), timeout=2)
        if unary_status(frames) == "0":
            break
        time.sleep(0.2)
    else:
        c.check("the server answers", False, f"no successful EmptyCall reply in 20 s (last: {frames!r})")
        return c

    # 1. UnaryCall: one frame; success is no sb-status (or "0"); the content type, if given, is
    #    the service's; the body decodes; the payload size is right.
    req = M.SimpleRequest(response_size=314159, payload=M.Payload(body=b"\0" * 271828))
    frames = t.wait(t.send("UnaryCall", req.SerializeToString(), deadline=deadline()))
    ok = isinstance(frames, list) and len(frames) == 1
    c.check("UnaryCall: one reply frame", ok, frames)
    if ok:
        f = frames[0]
        c.check("UnaryCall: success (no sb-status, or 0)", f.get("sb-status") in (None, "0"), f)
        c.check("UnaryCall: content type absent or application/protobuf", f.content_type in (None, PROTOBUF), f)
        try:
            resp = M.SimpleResponse.FromString(f.body)
            c.check("UnaryCall: SimpleResponse with 314159 zero bytes", resp.payload.body == b"\0" * 314159,
                    f"{len(resp.payload.body)} bytes")
        except Exception as e:  # noqa: BLE001
            c.check("UnaryCall: body decodes as SimpleResponse", False, e)
    # A plain call: no headers at all (no deadline, no id, no content type; the method in the
    # `type` property / the subject).
    frames = t.wait(t.send("UnaryCall", M.SimpleRequest(response_size=7).SerializeToString(), content_type=None))
    c.check("a plain call with no headers at all", payload_size(M, frames) == 7, frames)
    # The method also in an `sb-method` header, which wins (RabbitMQ: over `type`; NATS: the
    # subject says the same method).
    if isinstance(t, Amqp):
        frames = t.wait(t.send("NoSuchMethod", M.SimpleRequest(response_size=4).SerializeToString(),
                               method_header="UnaryCall", deadline=deadline()))
        c.check("an sb-method header wins over the type property", payload_size(M, frames) == 4, frames)
    else:
        frames = t.wait(t.send("UnaryCall", M.SimpleRequest(response_size=4).SerializeToString(),
                               method_header="UnaryCall", content_type=PROTOBUF, deadline=deadline()))
        c.check("sb-method and content-type headers accepted", payload_size(M, frames) == 4, frames)

    # 2. An error with a non-ASCII message: sb-status 2, percent-encoded message, empty body.
    msg = "non-ASCII «ünïcødé» ☺ 😈, 100% sure\t\r\n"
    req = M.SimpleRequest(response_status=M.EchoStatus(code=2, message=msg))
    frames = t.wait(t.send("UnaryCall", req.SerializeToString(), deadline=deadline()))
    ok = isinstance(frames, list) and len(frames) == 1
    c.check("error: one reply frame", ok, frames)
    if ok:
        f = frames[0]
        raw = f.get("sb-status-message") or ""
        c.check("error: sb-status 2", f.get("sb-status") == "2", f)
        c.check("error: sb-status-message is printable ASCII (percent-encoded)",
                all(0x20 <= ord(ch) <= 0x7E for ch in raw) and raw.upper() == pct_encode(msg).upper(), repr(raw))
        c.check("error: sb-status-message decodes to the message", pct_decode(raw) == msg, repr(pct_decode(raw)))
        c.check("error: empty body", f.body == b"", f"{len(f.body)} bytes")

    # 3. Metadata: the echo header comes back (success: on the reply; error: with the status,
    #    the -bin one too, base64).
    trailing = b"\x0a\x0b\x0a\x0b\x0a\x0b"
    md = {ECHO_INITIAL: "test_initial_metadata_value", ECHO_TRAILING_BIN: base64.b64encode(trailing).decode()}
    frames = t.wait(t.send("UnaryCall", M.SimpleRequest(response_size=1).SerializeToString(), headers=md,
                           deadline=deadline()))
    c.check("metadata: echoed on a successful reply", unary_status(frames) == "0"
            and frames[0].get(ECHO_INITIAL) == md[ECHO_INITIAL], frames)
    req = M.SimpleRequest(response_status=M.EchoStatus(code=5, message="gone"))
    frames = t.wait(t.send("UnaryCall", req.SerializeToString(), headers=md, deadline=deadline()))
    c.check("metadata: echoed with an error status (ASCII and -bin)", unary_status(frames) == "5"
            and frames[0].get(ECHO_INITIAL) == md[ECHO_INITIAL]
            and base64.b64decode(frames[0].get(ECHO_TRAILING_BIN) or "") == trailing, frames)

    # 4. StreamingOutputCall: data frames sb-seq 0..n-1 (no sb-status), then the end frame.
    sizes = [31415, 9, 2653, 58979]
    req = M.StreamingOutputCallRequest(response_parameters=[M.ResponseParameters(size=s) for s in sizes])
    frames = t.wait(t.send("StreamingOutputCall", req.SerializeToString(), headers={ECHO_INITIAL: "s"},
                           deadline=deadline()), stream=True)
    ok = isinstance(frames, list) and len(frames) == len(sizes) + 1
    c.check("stream: 4 data frames and an end frame", ok, frames)
    if ok:
        seqs = [f.get("sb-seq") for f in frames]
        c.check("stream: sb-seq 0..4 in order", seqs == [str(i) for i in range(len(sizes) + 1)], seqs)
        c.check("stream: data frames carry no sb-status", all("sb-status" not in f.headers for f in frames[:-1]),
                frames)
        got = [len(M.StreamingOutputCallResponse.FromString(f.body).payload.body) for f in frames[:-1]]
        c.check("stream: payload sizes", got == sizes, got)
        c.check("stream: response metadata on the first data frame", frames[0].get(ECHO_INITIAL) == "s", frames[0])
        end = frames[-1]
        c.check("stream: end frame sb-status 0, empty body", end.get("sb-status") == "0" and end.body == b"", end)
    frames = t.wait(t.send("StreamingOutputCall", M.StreamingOutputCallRequest().SerializeToString(),
                           deadline=deadline()), stream=True)
    c.check("stream: an empty stream is the end frame alone (sb-seq 0, sb-status 0)", isinstance(frames, list)
            and len(frames) == 1 and (frames[0].get("sb-seq"), frames[0].get("sb-status")) == ("0", "0"), frames)
    req = M.StreamingOutputCallRequest(response_status=M.EchoStatus(code=10, message="aborted"))
    frames = t.wait(t.send("StreamingOutputCall", req.SerializeToString(), deadline=deadline()), stream=True)
    c.check("stream: an error is the end frame with its status", stream_status(frames) == "10"
            and pct_decode(frames[-1].get("sb-status-message") or "") == "aborted", frames)

    # 5. Errors the server reports itself.
    frames = t.wait(t.send("NoSuchMethod", b"", deadline=deadline()))
    c.check("unknown method: UNIMPLEMENTED (12)", unary_status(frames) == "12", frames)
    frames = t.wait(t.send("StreamingInputCall", b"", deadline=deadline()))
    c.check("client streaming: UNIMPLEMENTED (12)", unary_status(frames) == "12", frames)
    frames = t.wait(t.send("FullDuplexCall", b"", deadline=deadline()))
    c.check("bidi streaming: UNIMPLEMENTED (12)", unary_status(frames) == "12", frames)
    if isinstance(t, Amqp):  # on NATS the subject always names a method
        frames = t.wait(t.send(None, M.SimpleRequest().SerializeToString(), deadline=deadline()))
        c.check("no method (no type, no sb-method): INVALID_ARGUMENT (3)", unary_status(frames) == "3", frames)
    frames = t.wait(t.send("UnaryCall", b"\xff\xff\xff", deadline=deadline()))
    c.check("undecodable body: INVALID_ARGUMENT (3)", unary_status(frames) == "3", frames)
    frames = t.wait(t.send("UnaryCall", b"{}", content_type="application/json", deadline=deadline()))
    c.check("foreign content-type: INVALID_ARGUMENT (3)", unary_status(frames) == "3", frames)

    # 6. Nobody serves the service: basic.return (RabbitMQ) / no responders (NATS), at once.
    started = time.monotonic()
    result = t.wait(t.send("UnimplementedCall", b"", service=UNSERVED, deadline=deadline()), timeout=5)
    c.check("unserved service: returned at once (basic.return / no responders)",
            result == "unroutable" and time.monotonic() - started < 3, f"{result!r} after {time.monotonic() - started:.1f}s")
    if isinstance(t, Nats):
        import nats.errors
        try:
            t.request("UnimplementedCall", b"", service=UNSERVED)
            c.check("unserved service: nc.request raises NoRespondersError", False, "a reply came")
        except nats.errors.NoRespondersError:
            c.check("unserved service: nc.request raises NoRespondersError", True)
        msg = t.request("UnaryCall", M.SimpleRequest(response_size=3).SerializeToString())
        c.check("the document's nc.request example", (msg.headers or {}).get("sb-status", "0") == "0"
                and len(M.SimpleResponse.FromString(msg.data).payload.body) == 3, msg.headers)

    # 7. Idempotency: a duplicate message id gets the first reply again.
    mid = str(uuid.uuid4())
    sizes = [payload_size(M, t.wait(t.send("UnaryCall", M.SimpleRequest(response_size=n).SerializeToString(),
                                           message_id=mid, deadline=deadline()))) for n in (3, 4)]
    c.check("a duplicate message-id gets the first reply again", sizes == [3, 3], sizes)

    # 8. Deadlines. An expired request gets no reply and is not run: a later request with the
    #    same message id is run afresh (had the expired one run, its reply would be replayed).
    #    No `expiration` here, so it is the server, not RabbitMQ, that drops it.
    mid = str(uuid.uuid4())
    corr = t.send("UnaryCall", M.SimpleRequest(response_size=1).SerializeToString(), message_id=mid,
                  deadline=now_ms() - 1000, expiration=False)
    frames = t.wait(corr, timeout=1.5)
    c.check("expired sb-deadline: no reply", frames == [], frames)
    got = payload_size(M, t.wait(t.send("UnaryCall", M.SimpleRequest(response_size=2).SerializeToString(),
                                        message_id=mid, deadline=deadline())))
    c.check("expired sb-deadline: the request was not run", got == 2, f"the same message id then answered {got!r}")
    #    A handler still running at the deadline: DEADLINE_EXCEEDED (4), at the deadline.
    req = M.StreamingOutputCallRequest(response_parameters=[M.ResponseParameters(size=1, interval_us=3_000_000)])
    started = time.monotonic()
    frames = t.wait(t.send("StreamingOutputCall", req.SerializeToString(), deadline=now_ms() + 300), timeout=5,
                    stream=True)
    took = time.monotonic() - started
    c.check("deadline passing in the handler: DEADLINE_EXCEEDED (4) at the deadline",
            stream_status(frames) == "4" and took < 2.5, f"{frames!r} after {took:.1f}s")
    return c


# ---- server ----------------------------------------------------------------------------------

class Handler:
    """TestService: what to answer to one request, as frames (headers, body)."""

    def __init__(self, Empty, M):
        self.Empty, self.M = Empty, M

    def echo(self, req_headers, error):
        out = {}
        if ECHO_INITIAL in req_headers:
            out[ECHO_INITIAL] = req_headers[ECHO_INITIAL]
        if error and ECHO_TRAILING_BIN in req_headers:
            out[ECHO_TRAILING_BIN] = req_headers[ECHO_TRAILING_BIN]
        return out

    @staticmethod
    def end(seq, code, message="", extra=None):
        h = {"sb-seq": str(seq), "sb-status": str(code)}
        if message:
            h["sb-status-message"] = pct_encode(message)
        h.update(extra or {})
        return h, b""

    def frames(self, method, headers, content_type, body, deadline, sleep):
        """Yields the reply frames. `sleep(seconds)` waits; returns False if the deadline passed."""
        M = self.M
        if not method:
            yield self.end(0, INVALID_ARGUMENT, "no method: neither an `sb-method` header nor the `type` property")
            return
        if method in ("StreamingInputCall", "FullDuplexCall", "HalfDuplexCall"):
            yield self.end(0, UNIMPLEMENTED, f"`{method}` streams requests: not carried over queues")
            return
        types_ = {"EmptyCall": self.Empty, "UnaryCall": M.SimpleRequest, "CacheableUnaryCall": M.SimpleRequest,
                  "StreamingOutputCall": M.StreamingOutputCallRequest}
        if method not in types_:
            yield self.end(0, UNIMPLEMENTED, f"`{SERVICE}` has no method `{method}`")
            return
        if content_type and content_type.lower() != PROTOBUF:
            yield self.end(0, INVALID_ARGUMENT, f"content-type `{content_type}` is not accepted: this service takes `{PROTOBUF}`")
            return
        try:
            req = types_[method].FromString(body)
        except Exception as e:  # noqa: BLE001
            yield self.end(0, INVALID_ARGUMENT, f"decoding the protobuf body: {e}")
            return
        # A unary success says `sb-status: 0` here (the document allows it; switchboard servers
        # leave it out), so the Rust client is checked against both forms.
        ok = {"content-type": PROTOBUF}
        if method == "EmptyCall":
            yield {"sb-seq": "0", "sb-status": "0", **ok, **self.echo(headers, False)}, self.Empty().SerializeToString()
            return
        if req.HasField("response_status") and req.response_status.code != 0:
            s = req.response_status
            yield self.end(0, s.code, s.message, self.echo(headers, True))
            return
        if method in ("UnaryCall", "CacheableUnaryCall"):
            resp = M.SimpleResponse(payload=M.Payload(body=b"\0" * max(0, req.response_size)))
            yield {"sb-seq": "0", "sb-status": "0", **ok, **self.echo(headers, False)}, resp.SerializeToString()
            return
        # StreamingOutputCall
        seq = 0
        for p in req.response_parameters:
            if p.interval_us > 0 and not sleep(p.interval_us / 1e6):
                yield self.end(seq, DEADLINE_EXCEEDED, "deadline exceeded")
                return
            h = {"sb-seq": str(seq), **ok}
            if seq == 0:
                h.update(self.echo(headers, False))
            yield h, M.StreamingOutputCallResponse(payload=M.Payload(body=b"\0" * max(0, p.size))).SerializeToString()
            seq += 1
        yield self.end(seq, OK, "", self.echo(headers, False) if seq == 0 else None)


class Dedupe:
    """Replies by message id, for 5 minutes: a duplicate gets the first reply again."""

    def __init__(self):
        self.seen = {}

    def get(self, mid):
        now = time.monotonic()
        for k in [k for k, (t, _) in self.seen.items() if now - t > 300]:
            del self.seen[k]
        return self.seen.get(mid, (None, None))[1] if mid else None

    def put(self, mid, frames):
        if mid:
            self.seen[mid] = (time.monotonic(), frames)


def serve_amqp(url, handler):
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    queue = f"sb.rpc.{SERVICE}"
    # Exactly as the document says, or RabbitMQ refuses the second declaration.
    ch.queue_declare(queue, durable=False, exclusive=False, auto_delete=True, arguments=None)
    ch.basic_qos(prefetch_count=16)
    dedupe = Dedupe()

    def on_request(ch, method, props, body):
        headers = {k.lower(): text(v) for k, v in (props.headers or {}).items()}
        # The method: an `sb-method` header wins over the `type` property.
        name = headers.get("sb-method") or props.type
        deadline = int(headers["sb-deadline"]) if headers.get("sb-deadline", "").isdigit() else None
        if deadline is not None and deadline <= now_ms():
            ch.basic_ack(method.delivery_tag)  # expired: dropped, not run, not answered
            return
        frames = dedupe.get(props.message_id)
        if frames is None:
            def sleep(seconds):
                if deadline is not None and now_ms() + seconds * 1000 > deadline:
                    conn.sleep(max(0, (deadline - now_ms()) / 1000))
                    return False
                conn.sleep(seconds)
                return True
            frames = []
            for h, b in handler.frames(name, headers, props.content_type, body, deadline, sleep):
                frames.append((h, b))
                publish(ch, props, h, b)
            dedupe.put(props.message_id, frames)
        else:
            for h, b in frames:
                publish(ch, props, h, b)
        ch.basic_ack(method.delivery_tag)  # after the reply is sent

    def publish(ch, props, h, b):
        if not props.reply_to:
            return
        ct = h.pop("content-type", None)
        ch.basic_publish("", props.reply_to, b, pika.BasicProperties(
            correlation_id=props.correlation_id, content_type=ct, headers=dict(h)))
        if ct:
            h["content-type"] = ct

    ch.basic_consume(queue, on_request, auto_ack=False)
    print(f"ready: serving {SERVICE} through RabbitMQ ({queue})", flush=True)
    ch.start_consuming()


async def serve_nats(url, handler):
    import nats
    nc = await nats.connect(url, max_reconnect_attempts=-1)
    dedupe = Dedupe()

    async def handle(msg):
        headers = {k.lower(): text(v) for k, v in (msg.headers or {}).items()}
        # The method: the subject's last token (sb.rpc.S.M), or an `sb-method` header.
        name = headers.get("sb-method") or msg.subject.rsplit(".", 1)[1]
        deadline = int(headers["sb-deadline"]) if headers.get("sb-deadline", "").isdigit() else None
        if deadline is not None and deadline <= now_ms():
            return  # expired: not run, not answered
        mid = headers.get("nats-msg-id")
        frames = dedupe.get(mid)
        if frames is None:
            frames, pending = [], []

            def sleep(seconds):
                pending.append(seconds)
                return deadline is None or now_ms() + seconds * 1000 <= deadline

            gen = handler.frames(name, headers, headers.get("content-type"), msg.data, deadline, sleep)
            # The handler is synchronous; its waits happen here, between frames.
            for h, b in gen:
                while pending:
                    s = pending.pop()
                    if deadline is not None:
                        s = min(s, max(0, (deadline - now_ms()) / 1000))
                    await asyncio.sleep(s)
                frames.append((h, b))
                if msg.reply:
                    await nc.publish(msg.reply, b, headers=h)
            dedupe.put(mid, frames)
        elif msg.reply:
            for h, b in frames:
                await nc.publish(msg.reply, b, headers=h)

    async def on_request(msg):
        asyncio.ensure_future(handle(msg))

    await nc.subscribe(f"sb.rpc.{SERVICE}.*", queue=f"sb.rpc.{SERVICE}", cb=on_request)
    await nc.flush()
    print(f"ready: serving {SERVICE} through NATS (sb.rpc.{SERVICE}.* in queue group sb.rpc.{SERVICE})", flush=True)
    await asyncio.Event().wait()


# ---- main ------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["client", "server"])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--amqp", metavar="URL")
    g.add_argument("--nats", metavar="URL")
    ap.add_argument("--protos", default=DEFAULT_PROTOS, help="directory holding grpc/testing/*.proto")
    args = ap.parse_args()
    try:
        if args.amqp:
            import pika  # noqa: F401
        else:
            import nats  # noqa: F401
    except ImportError as e:
        skip(f"{e.name} not installed (pip install {'pika' if args.amqp else 'nats-py'})")
    Empty, M = load_messages(args.protos)
    Empty = Empty.Empty
    if args.mode == "server":
        handler = Handler(Empty, M)
        if args.amqp:
            serve_amqp(args.amqp, handler)
        else:
            try:
                asyncio.run(serve_nats(args.nats, handler))
            except KeyboardInterrupt:
                pass
        return
    t = Amqp(args.amqp) if args.amqp else Nats(args.nats)
    try:
        c = run_client(t, Empty, M)
    finally:
        t.close()
    print(f"{c.passed} passed, {c.failed} failed")
    sys.exit(1 if c.failed or not c.passed else 0)


if __name__ == "__main__":
    main()
