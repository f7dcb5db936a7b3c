#!/usr/bin/env python3
"""Health checks against a switchboard server with gRPC's own Python health stub
(grpcio-health-checking's grpc_health.v1), as grpc_health_probe-style tools make them.

Run: python3 runtime/tests/health_probe.py HOST:PORT CHECK...

Each CHECK is KIND:SERVICE=EXPECTED, SERVICE may be empty (the server as a whole):
  check:SERVICE=SERVING        Check answers this status (or this code, e.g. check:nope=NOT_FOUND)
  watch:SERVICE=SERVING        the first message of Watch has this status
  list:SERVICE=SERVING         List has this status for SERVICE (list:SERVICE=ABSENT: not listed)

Prints one line per check and exits 1 if any failed. runtime/tests/health.rs runs it.
"""
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT = 5.0


def status_name(status):
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def run(stub, kind, service):
    request = health_pb2.HealthCheckRequest(service=service)
    try:
        if kind == "check":
            return status_name(stub.Check(request, timeout=TIMEOUT).status)
        if kind == "watch":
            call = stub.Watch(request, timeout=TIMEOUT)
            try:
                return status_name(next(call).status)
            finally:
                call.cancel()
        if kind == "list":
            statuses = stub.List(health_pb2.HealthListRequest(), timeout=TIMEOUT).statuses
            return status_name(statuses[service].status) if service in statuses else "ABSENT"
    except grpc.RpcError as e:
        return e.code().name
    raise SystemExit(f"unknown check kind {kind!r}")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    failed = 0
    with grpc.insecure_channel(sys.argv[1]) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        stub = health_pb2_grpc.HealthStub(channel)
        for check in sys.argv[2:]:
            kind, _, rest = check.partition(":")
            service, _, expected = rest.rpartition("=")
            got = run(stub, kind, service)
            ok = got == expected
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {kind}({service!r}): {got}" + ("" if ok else f", expected {expected}"))
    print(f"health probe: {len(sys.argv) - 2 - failed} ok, {failed} wrong")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
