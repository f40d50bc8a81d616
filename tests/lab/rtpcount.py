#!/usr/bin/env python3
"""rtpcount: a bounded RTP endpoint for sipnat's media tests (stdlib only).

send   plays one phone: sends --count RTP packets (RFC 3550 header, PCMU,
       160-byte payload = 20 ms at 8 kHz, sequence number +1 and timestamp
       +160 per packet) to --to from ONE socket, and counts what arrives on
       that same socket while it sends and for --linger-ms afterwards
       (symmetric RTP, RFC 4961: a relay that latches answers to the
       address we send from).  --count 0 only listens.
spray  plays the attacker of an "RTP bleed": sends --count packets to every
       port of --ports on --host, with a distinctive SSRC, as fast as
       --pps allows, and reports anything that comes back (a relay that
       latched onto us would now send us somebody's audio).

check  judges a summary written by send or spray (exit 0 or 1, one line
       of explanation), so that shell tests need no JSON tool.

send and spray print one JSON object (also to --out FILE when given):
  {"mode", "bind", "ssrc", "sent", "send_errors", "received",
   "non_rtp", "streams": [{"from": "IP:PORT", "ssrc", "packets",
   "unique_seq", "bytes"}], ...}
Every run is bounded by --max-seconds whatever happens.
"""

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

RTP_VERSION = 2
PT_PCMU = 0
PAYLOAD_LEN = 160  # 20 ms of G.711 at 8000 samples/s
ULAW_SILENCE = 0xFF


def parse_hostport(text):
    """'IP:PORT' or '[IPv6]:PORT' -> (family, (host, port))."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError("expected IP:PORT, got %r" % text)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


def parse_range(text):
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or int(low) > int(high):
        raise argparse.ArgumentTypeError("expected LOW-HIGH, got %r" % text)
    if int(high) > 65535 or int(high) - int(low) > 20000:
        raise argparse.ArgumentTypeError("port range %r too large" % text)
    return int(low), int(high)


def parse_ssrc(text):
    value = int(text, 0)
    if not 0 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("SSRC out of range: %r" % text)
    return value


def fmt_addr(addr):
    host, port = addr[0], addr[1]
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def rtp_packet(seq, timestamp, ssrc, marker=False, fill=ULAW_SILENCE):
    """RFC 3550 §5.1 fixed header (no CSRC, no extension) + payload."""
    first = RTP_VERSION << 6
    second = (0x80 if marker else 0) | PT_PCMU
    header = struct.pack(
        "!BBHII", first, second, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    )
    return header + bytes([fill]) * PAYLOAD_LEN


class Counter:
    """Packets received, keyed by (source address, SSRC)."""

    def __init__(self):
        self.streams = {}
        self.non_rtp = 0
        self.total = 0
        self.first_ms = None
        self.last_ms = None

    def add(self, data, src):
        now = int(time.time() * 1000)
        self.total += 1
        self.first_ms = self.first_ms if self.first_ms is not None else now
        self.last_ms = now
        # A version-2 header of at least 12 bytes; RTCP (PT 200-204 in
        # the second byte, RFC 5761 §4) is not RTP for our counting.
        if len(data) < 12 or data[0] >> 6 != RTP_VERSION or 200 <= data[1] <= 204:
            self.non_rtp += 1
            return
        seq, _ts, ssrc = struct.unpack("!HII", data[2:12])
        key = (fmt_addr(src), ssrc)
        entry = self.streams.setdefault(key, {"packets": 0, "bytes": 0, "seqs": set()})
        entry["packets"] += 1
        entry["bytes"] += len(data)
        entry["seqs"].add(seq)

    def summary(self):
        out = []
        for (src, ssrc), e in sorted(self.streams.items()):
            out.append(
                {
                    "from": src,
                    "ssrc": ssrc,
                    "packets": e["packets"],
                    "unique_seq": len(e["seqs"]),
                    "bytes": e["bytes"],
                }
            )
        return out


def drain(sock, counter, timeout):
    """Receive for at most `timeout` seconds (returns early when idle)."""
    readable, _, _ = select.select([sock], [], [], max(0.0, timeout))
    while readable:
        try:
            data, src = sock.recvfrom(65535)
        except BlockingIOError:
            return
        except OSError:
            # ICMP port unreachable from an earlier send surfaces here on
            # Linux (ECONNREFUSED); it is not a received packet.
            return
        counter.add(data, src)
        readable, _, _ = select.select([sock], [], [], 0)


def open_socket(bind_text, family_hint):
    if bind_text:
        family, addr = parse_hostport(bind_text)
    else:
        family = family_hint
        addr = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(addr)
    sock.setblocking(False)
    return sock


def emit(result, out_path):
    text = json.dumps(result, sort_keys=True)
    if out_path:
        tmp = out_path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(text + "\n")
        os.replace(tmp, out_path)  # readers never see half a file
    print(text)
    sys.stdout.flush()


def cmd_send(args):
    deadline = time.monotonic() + args.max_seconds
    family = socket.AF_INET
    dest = None
    if args.count > 0:
        if not args.to:
            sys.exit("rtpcount: send needs --to unless --count is 0")
        family, dest = parse_hostport(args.to)
    sock = open_socket(args.bind, family)
    counter = Counter()
    sent = errors = 0

    # Wait for the common start time, receiving meanwhile (the other
    # phone may be a few milliseconds early).
    late_ms = 0
    if args.start_at:
        wait = args.start_at / 1000.0 - time.time()
        # Started after the agreed time (a loaded machine): the peer may
        # have sent into a closed port meanwhile; say so in the summary.
        late_ms = max(0, int(-wait * 1000))
    else:
        wait = args.delay_ms / 1000.0
    wait = min(wait, deadline - time.monotonic())
    end_wait = time.monotonic() + max(0.0, wait)
    while time.monotonic() < end_wait:
        drain(sock, counter, end_wait - time.monotonic())

    interval = args.interval_ms / 1000.0
    t0 = time.monotonic()
    seq0 = args.seq_start
    for i in range(args.count):
        if time.monotonic() >= deadline:
            break
        pkt = rtp_packet(seq0 + i, args.ts_start + i * PAYLOAD_LEN, args.ssrc, marker=(i == 0))
        try:
            sock.sendto(pkt, dest)
            sent += 1
        except OSError:
            errors += 1
        next_at = t0 + (i + 1) * interval
        while True:
            left = min(next_at, deadline) - time.monotonic()
            if left <= 0:
                break
            drain(sock, counter, left)

    end = min(time.monotonic() + args.linger_ms / 1000.0, deadline)
    while time.monotonic() < end:
        drain(sock, counter, end - time.monotonic())

    emit(
        {
            "mode": "send",
            "bind": fmt_addr(sock.getsockname()),
            "to": fmt_addr(dest) if dest else None,
            "ssrc": args.ssrc,
            "sent": sent,
            "send_errors": errors,
            "received": counter.total,
            "non_rtp": counter.non_rtp,
            "late_ms": late_ms,
            "first_rx_ms": counter.first_ms,
            "last_rx_ms": counter.last_ms,
            "streams": counter.summary(),
        },
        args.out,
    )
    return 0


def cmd_spray(args):
    deadline = time.monotonic() + args.max_seconds
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = open_socket(args.bind, family)
    low, high = args.ports
    counter = Counter()
    sent = errors = 0
    gap = 1.0 / args.pps if args.pps > 0 else 0.0
    next_at = time.monotonic()
    seq = 0
    finished = True
    # Round-robin over the range, so that every port gets its first packet
    # early: the point is to hit a relay port before the phone does.
    for k in range(args.count):
        for port in range(low, high + 1):
            if time.monotonic() >= deadline:
                finished = False
                break
            pkt = rtp_packet(seq, seq * PAYLOAD_LEN, args.ssrc, fill=0x55)
            seq += 1
            try:
                sock.sendto(pkt, (args.host, port))
                sent += 1
            except OSError:
                errors += 1
            if gap:
                next_at += gap
                left = next_at - time.monotonic()
                if left > 0:
                    drain(sock, counter, left)
            elif sent % 64 == 0:
                drain(sock, counter, 0)
        if not finished:
            break

    end = min(time.monotonic() + args.linger_ms / 1000.0, deadline)
    while time.monotonic() < end:
        drain(sock, counter, end - time.monotonic())

    emit(
        {
            "mode": "spray",
            "bind": fmt_addr(sock.getsockname()),
            "host": args.host,
            "ports": "%d-%d" % (low, high),
            "ssrc": args.ssrc,
            "sent": sent,
            "send_errors": errors,
            "complete": finished,
            "received": counter.total,
            "non_rtp": counter.non_rtp,
            "streams": counter.summary(),
        },
        args.out,
    )
    return 0


def addr_matches(want, got):
    """want is IP or IP:PORT; got is a formatted IP:PORT."""
    if want.startswith("[") or want.count(":") == 1:
        return want == got
    return got.rpartition(":")[0].strip("[]") == want


def cmd_check(args):
    try:
        with open(args.file, encoding="ascii") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print("FAIL: cannot read %s: %s" % (args.file, e))
        return 1
    streams = data.get("streams", [])
    problems = []
    good = 0
    if args.ssrc is not None:
        for s in streams:
            if s["ssrc"] == args.ssrc and (not args.source or addr_matches(args.source, s["from"])):
                good += s["unique_seq"]
        if good < args.min:
            problems.append("%d packets of SSRC %d from %s, expected >= %d"
                            % (good, args.ssrc, args.source or "anywhere", args.min))
    if args.only_from:
        strangers = [s for s in streams if not addr_matches(args.only_from, s["from"])]
        if strangers:
            problems.append("packets from other sources than %s: %s" % (
                args.only_from,
                ", ".join("%d from %s ssrc %d" % (s["packets"], s["from"], s["ssrc"])
                          for s in strangers)))
    for bad in args.forbid_ssrc or []:
        n = sum(s["packets"] for s in streams if s["ssrc"] == bad)
        if n:
            problems.append("%d packets with the forbidden SSRC %d" % (n, bad))
    if args.max_received is not None and data.get("received", 0) > args.max_received:
        problems.append("%d packets received, expected <= %d"
                        % (data.get("received", 0), args.max_received))
    what = "%s: sent %d, received %d (%d of SSRC %s)" % (
        args.file, data.get("sent", 0), data.get("received", 0), good,
        args.ssrc if args.ssrc is not None else "-")
    if problems:
        print("FAIL: %s: %s" % (what, "; ".join(problems)))
        return 1
    print("ok: %s" % what)
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="rtpcount", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)

    s = sub.add_parser("send", help="one phone: send RTP, count what arrives")
    s.add_argument("--to", help="IP:PORT to send to")
    s.add_argument("--bind", help="local IP:PORT (the port the SDP advertises)")
    s.add_argument("--count", type=int, default=150)
    s.add_argument("--interval-ms", type=float, default=20.0)
    s.add_argument("--ssrc", type=parse_ssrc, required=True)
    s.add_argument("--seq-start", type=int, default=1000)
    s.add_argument("--ts-start", type=int, default=0)
    s.add_argument("--start-at", type=int, default=0, help="wall-clock start, epoch ms")
    s.add_argument("--delay-ms", type=int, default=0, help="start after this (no --start-at)")
    s.add_argument("--linger-ms", type=int, default=1000, help="keep counting after sending")
    s.add_argument("--max-seconds", type=float, default=30.0)
    s.add_argument("--out", help="also write the JSON summary here")

    p = sub.add_parser("spray", help="the attacker: K packets to every port of a range")
    p.add_argument("--host", required=True)
    p.add_argument("--ports", type=parse_range, required=True)
    p.add_argument("--count", type=int, default=20, help="packets per port")
    p.add_argument("--ssrc", type=parse_ssrc, default=0xBADBEEF0)
    p.add_argument("--bind", help="local IP:PORT")
    p.add_argument("--pps", type=int, default=5000, help="packets per second, 0 = no limit")
    p.add_argument("--linger-ms", type=int, default=500)
    p.add_argument("--max-seconds", type=float, default=5.0)
    p.add_argument("--out", help="also write the JSON summary here")

    c = sub.add_parser("check", help="judge a JSON summary (exit status)")
    c.add_argument("file")
    c.add_argument("--from", dest="source", help="IP or IP:PORT the stream must come from")
    c.add_argument("--ssrc", type=parse_ssrc, help="the stream that must arrive")
    c.add_argument("--min", type=int, default=0, help="distinct packets of that stream")
    c.add_argument("--only-from", help="every packet must come from this IP or IP:PORT")
    c.add_argument("--forbid-ssrc", type=parse_ssrc, action="append")
    c.add_argument("--max-received", type=int)

    args = ap.parse_args(argv)
    if args.mode == "check":
        return cmd_check(args)
    if getattr(args, "count", 0) < 0 or getattr(args, "max_seconds", 1) <= 0:
        ap.error("--count must be >= 0 and --max-seconds > 0")
    if args.mode == "send":
        if args.interval_ms <= 0:
            ap.error("--interval-ms must be > 0")
        return cmd_send(args)
    return cmd_spray(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
