#!/usr/bin/env python3
"""Body flood: many stalled, unsigned, large webhook bodies held open at once.

Measures how much memory a webhook receiver spends on deliveries that will never
complete. Opens N connections to HOST:PORT and, on each, sends

    POST /hooks HTTP/1.1
    X-GitHub-Event: push
    X-GitHub-Delivery: <random UUID>
    Content-Type: application/json
    Content-Length: SIZE

with no signature header, then SIZE-1 bytes of body (`{"a":"xxxx...`) in chunks,
interleaved across all connections, and stalls without sending the last byte. Once
every body is sent (or has failed), it holds all connections open for HOLD seconds,
then closes them. A server that buffers unauthenticated bodies holds roughly
N * SIZE bytes by then; one that rejects them early answers (503, 413, ...) before the
body is done, and those answers are reported.

With --pid PID it reads VmHWM (peak RSS) and VmRSS of that process from
/proc/PID/status at the end of the hold, before closing, and prints them.

Keep HOLD (plus the time the send takes, printed) below the server's body timeout
(hookserver: HOOKSERVER_BODY_TIMEOUT_SECS, 10 s by default), or the server answers
408 and frees the bodies before they are measured.

Usage:
    scripts/body-flood.py [-n N] [--size SIZE] [--hold HOLD] [--pid PID] [HOST:PORT]

    HOST:PORT      target (default 127.0.0.1:8000)
    -n N           connections, 1..1000 (default 20)
    --size SIZE    Content-Length of each body in bytes (default 20000000)
    --hold HOLD    seconds to hold the stalled connections, 0..600 (default 5)
    --timeout T    give up sending after T seconds, 1..600 (default 60)
    --pid PID      print VmHWM and VmRSS of PID after the hold

Example, against the example server:
    GITHUB_WEBHOOKS_KEY=x VALIDATE_IP=false HOOKSERVER_ADDR=127.0.0.1:8030 \\
        target/release/examples/server &
    scripts/body-flood.py -n 20 --pid $! 127.0.0.1:8030

Only point it at servers you run yourself. Standard library only; Linux for --pid.
"""

import argparse
import collections
import errno
import os
import selectors
import socket
import sys
import time
import uuid

CHUNK = 256 * 1024
MAX_CONNECTIONS = 1000
PREFIX = b'{"a":"'


class Conn:
    """One stalled delivery: its socket, what is left to send, and what came back."""

    def __init__(self, index, sock, head, body_len):
        self.index = index
        self.sock = sock
        self.head = memoryview(head)  # headers still to send
        self.body_left = body_len  # body bytes still to send (SIZE-1 in all)
        self.body_sent = 0
        self.answer = b""  # what the server sent back, if anything
        self.error = None  # why sending stopped early
        self.closed_by_peer = False

    @property
    def done(self):
        return self.error is not None or (not self.head and self.body_left == 0)

    @property
    def fully_sent(self):
        return self.error is None and not self.head and self.body_left == 0


def parse_target(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None


def bounded(lo, hi, kind=int):
    def parse(text):
        value = kind(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} is outside {lo}..{hi}")
        return value

    return parse


def request_head(host, port, size):
    return (
        "POST /hooks HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "User-Agent: body-flood\r\n"
        "X-GitHub-Event: push\r\n"
        f"X-GitHub-Delivery: {uuid.uuid4()}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {size}\r\n"
        "\r\n"
    ).encode("ascii")


def body_bytes(offset, count):
    """`count` bytes of the body starting at `offset`: the prefix, then x's."""
    if offset >= len(PREFIX):
        return memoryview(FILLER)[:count]
    return (PREFIX[offset:] + FILLER)[:count]


FILLER = b"x" * CHUNK


def send_some(conn):
    """Send what the socket takes now; record a failure instead of raising."""
    try:
        while not conn.done:
            if conn.head:
                n = conn.sock.send(conn.head)
                conn.head = conn.head[n:]
            else:
                n = conn.sock.send(body_bytes(conn.body_sent, min(CHUNK, conn.body_left)))
                conn.body_sent += n
                conn.body_left -= n
    except (BlockingIOError, InterruptedError):
        pass
    except OSError as e:
        conn.error = errno.errorcode.get(e.errno, str(e))


def read_some(conn):
    """Keep the first 4 KiB of any answer; note when the server closes."""
    try:
        data = conn.sock.recv(4096)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError as e:
        conn.error = conn.error or errno.errorcode.get(e.errno, str(e))
        return False
    if not data:
        conn.closed_by_peer = True
        if not conn.done:
            conn.error = "closed by server"
        return False
    if len(conn.answer) < 4096:
        conn.answer += data[: 4096 - len(conn.answer)]
    return True


def status_line(answer):
    return answer.split(b"\r\n", 1)[0].decode("latin-1", "replace")


def proc_memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = value.strip()
    return fields


def main():
    parser = argparse.ArgumentParser(
        description="Hold N stalled, unsigned, large webhook bodies open at once.",
        epilog="See the header of this file for details.",
    )
    parser.add_argument("target", nargs="?", default="127.0.0.1:8000", type=parse_target,
                        help="HOST:PORT (default 127.0.0.1:8000)")
    parser.add_argument("-n", "--connections", type=bounded(1, MAX_CONNECTIONS), default=20,
                        help=f"connections, 1..{MAX_CONNECTIONS} (default 20)")
    parser.add_argument("--size", type=bounded(len(PREFIX) + 1, 1 << 40), default=20_000_000,
                        help="Content-Length of each body (default 20000000)")
    parser.add_argument("--hold", type=bounded(0, 600, float), default=5.0,
                        help="seconds to hold the stalled connections (default 5)")
    parser.add_argument("--timeout", type=bounded(1, 600, float), default=60.0,
                        help="give up sending after this many seconds (default 60)")
    parser.add_argument("--pid", type=int, help="print VmHWM and VmRSS of this process")
    args = parser.parse_args()
    host, port = args.target
    if args.pid is not None and not os.path.exists(f"/proc/{args.pid}/status"):
        parser.error(f"no process {args.pid}")

    print(f"target {host}:{port}: {args.connections} connections, "
          f"Content-Length {args.size}, sending {args.size - 1} bytes each, hold {args.hold:g} s")
    conns = []
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    try:
        for i in range(args.connections):
            sock = socket.create_connection((host, port), timeout=5)
            sock.setblocking(False)
            conn = Conn(i, sock, request_head(host, port, args.size), args.size - 1)
            conns.append(conn)
            sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
    except OSError as e:
        print(f"connect {len(conns) + 1} failed: {e}", file=sys.stderr)

    # Send, interleaved: every socket gets what it takes whenever it is writable.
    deadline = start + args.timeout
    while any(not c.done for c in conns) and time.monotonic() < deadline:
        for key, events in sel.select(timeout=0.5):
            conn = key.data
            if events & selectors.EVENT_READ and not read_some(conn):
                sel.unregister(conn.sock)
                continue
            if events & selectors.EVENT_WRITE:
                send_some(conn)
            if conn.done:
                sel.modify(conn.sock, selectors.EVENT_READ, conn)
    sent_in = time.monotonic() - start
    for conn in conns:
        if not conn.done:
            conn.error = "send timed out"
            try:
                sel.modify(conn.sock, selectors.EVENT_READ, conn)
            except (KeyError, ValueError):
                pass
    fully = sum(c.fully_sent for c in conns)
    print(f"sent: {fully}/{len(conns)} connections fully sent (all but the last byte) "
          f"in {sent_in:.2f} s")

    # Hold, still collecting answers.
    hold_until = time.monotonic() + args.hold
    while (left := hold_until - time.monotonic()) > 0:
        if not sel.get_map():
            time.sleep(min(left, 0.5))
            continue
        for key, _ in sel.select(timeout=min(left, 0.5)):
            if not read_some(key.data):
                sel.unregister(key.data.sock)
    held = time.monotonic() - start

    if args.pid is not None:
        try:
            mem = proc_memory(args.pid)
            print(f"pid {args.pid} after {held:.2f} s: VmHWM {mem.get('VmHWM', '?')}, "
                  f"VmRSS {mem.get('VmRSS', '?')}")
        except OSError as e:
            print(f"pid {args.pid}: cannot read /proc status: {e}", file=sys.stderr)

    for conn in conns:
        conn.sock.close()
    sel.close()

    answers = collections.Counter(status_line(c.answer) for c in conns if c.answer)
    errors = collections.Counter(c.error for c in conns if c.error)
    closed = sum(c.closed_by_peer for c in conns)
    print(f"early answers: {sum(answers.values())}" + "".join(
        f"\n  {count} x {line}" for line, count in answers.most_common()))
    print(f"closed by server before the end of the hold: {closed}")
    if errors:
        print("send errors: " + ", ".join(f"{count} x {e}" for e, count in errors.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
