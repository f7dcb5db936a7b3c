#!/usr/bin/env bash
# Run from the workspace root: bash examples/bench/callgrind/per-request.sh PROFILE...
#
# Instructions per request of callgrind profiles written by server.sh / queue.sh: the profile's
# total divided by the calls of one function that runs once per request, read from the profile
# (gRPC: h2's Recv::recv_headers, one per request stream; REST and OpenAPI: hyper's h1 Server::encode, one per
# response; queue: Replies::deliver, one per reply the client receives). The kind is taken from
# the file name (grpc*, rest*, openapi*, queue*).
set -euo pipefail
HERE=$(dirname "${BASH_SOURCE[0]}")
for f in "$@"; do
    case $(basename "$f") in
        grpc*) pat='streams::recv::Recv::recv_headers$' ;;
        rest*|openapi*) pat='proto::h1::role::Server.*encode$' ;;
        queue*) pat='Replies::deliver$' ;;
        *) echo "per-request.sh: $f: name must start with grpc, rest, openapi or queue" >&2; exit 2 ;;
    esac
    python3 "$HERE/calls.py" "$f" "$pat" |
        awk -v n="$(basename "$f")" 'NR==1{t=$3} NR==2{c=$1} END{printf "%-24s total %14.0f  requests %8d  per request %8.0f\n", n, t, c, t/c}'
done
