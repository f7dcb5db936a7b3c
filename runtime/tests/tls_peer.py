"""Python clients of a switchboard TLS server, for runtime/tests/tls.rs.

usage: tls_peer.py HOST:PORT CA_PEM [CLIENT_PEM CLIENT_KEY]

Calls test.tls.v1.Echo/Say over gRPC (grpcio, `grpc.ssl_channel_credentials` with the CA) and
over REST (`requests.post(..., verify=CA_PEM)`), each with the client certificate when one is
given. With a client certificate (the server requires one) it also checks that both clients are
refused without it. Prints one line per check, then `N passed, N failed`; exits 1 on a failure.
"""

import sys

import grpc
import requests

METHOD = "/test.tls.v1.Echo/Say"


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(text):
    """A Greeting message: field 1, the text (protobuf wire format)."""
    data = text.encode()
    return b"\x0a" + varint(len(data)) + data


def decode(data):
    """The text of a Greeting message (empty when the field is absent)."""
    if not data:
        return ""
    if data[0] != 0x0A:
        raise ValueError(f"unexpected tag {data[0]:#x}")
    length, shift, i = 0, 0, 1
    while True:
        byte = data[i]
        length |= (byte & 0x7F) << shift
        shift += 7
        i += 1
        if not byte & 0x80:
            break
    return data[i : i + length].decode()


def grpc_say(target, ca, identity, text):
    key, chain = (identity[1], identity[0]) if identity else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=chain)
    with grpc.secure_channel(target, credentials) as channel:
        say = channel.unary_unary(METHOD, request_serializer=encode, response_deserializer=decode)
        return say(text, timeout=10)


def rest_say(target, ca_path, cert_paths, text):
    response = requests.post(f"https://{target}{METHOD}", json={"text": text}, verify=ca_path, cert=cert_paths, timeout=10)
    response.raise_for_status()
    return response.json()["text"]


def main():
    target, ca_path = sys.argv[1], sys.argv[2]
    cert_paths = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else None
    with open(ca_path, "rb") as f:
        ca = f.read()
    identity = None
    if cert_paths:
        with open(cert_paths[0], "rb") as c, open(cert_paths[1], "rb") as k:
            identity = (c.read(), k.read())

    passed = failed = 0

    def check(name, run):
        nonlocal passed, failed
        try:
            print(f"{name}: {run()}", flush=True)
            passed += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            print(f"{name}: FAILED: {type(e).__name__}: {e}", flush=True)
            failed += 1

    def refused(run, kinds):
        try:
            answer = run()
        except grpc.RpcError as e:
            if e.code() in kinds:
                return f"refused ({e.code().name})"
            raise
        except requests.exceptions.ConnectionError as e:
            # An SSLError, or the server's alert surfacing while the response is read.
            tls = isinstance(e, requests.exceptions.SSLError) or "certificate required" in str(e).lower()
            if tls and requests.exceptions.SSLError in kinds:
                return "refused (SSLError)"
            raise
        raise AssertionError(f"answered without a client certificate: {answer!r}")

    check("grpc", lambda: grpc_say(target, ca, identity, "python grpc"))
    check("rest", lambda: rest_say(target, ca_path, cert_paths, "python requests"))
    if identity:
        check(
            "grpc without a client certificate",
            lambda: refused(lambda: grpc_say(target, ca, None, "anonymous"), [grpc.StatusCode.UNAVAILABLE]),
        )
        check(
            "rest without a client certificate",
            lambda: refused(lambda: rest_say(target, ca_path, None, "anonymous"), [requests.exceptions.SSLError]),
        )

    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
