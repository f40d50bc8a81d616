#!/usr/bin/env python3
"""labprobe - tiny UDP/TCP probe used by sipnat-lab's self-check.

Every subcommand is bounded in time (a hard SIGALRM cap on top of the socket
timeouts) so that a broken lab can never hang a test run.

  labprobe.py echo --bind IP:PORT [--timeout S] [--ready FILE]
      UDP and TCP on the same address. Each datagram (or TCP connection) is
      answered with "seen IP:PORT", the source address as this host sees it,
      i.e. the public mapping when the sender is behind a NAT (a poor man's
      STUN binding, RFC 5389 section 2 in spirit).

  labprobe.py send --bind IP:PORT --to IP:PORT [--to IP:PORT ...]
                   [--tcp] [--sip PRIVATE_IP] [--data TEXT] [--dump FILE]
                   [--reply-timeout S] [--linger S] [--ready FILE]
      Sends one datagram from ONE socket to each destination in turn (so a
      NAT sees the same local port every time), waits for each reply and
      prints "reply to=DST seen=IP:PORT" or "noreply to=DST".  With --tcp it
      connects instead and prints "reply ..." or "error to=DST ERRNO".
      --sip builds a SIP INVITE whose Contact and SDP c= carry PRIVATE_IP;
      --dump writes the exact bytes sent.  --linger keeps the socket open
      afterwards and reports every datagram that arrives as
      "stray from=IP:PORT"; --ready is created once all replies are in.

  labprobe.py recv --bind IP:PORT [--timeout S] [--ready FILE] [--save FILE]
      Waits for one datagram, prints "from=IP:PORT len=N" (exit 0) or
      "timeout" (exit 1); --save writes the payload.
"""

import argparse
import errno
import os
import select
import signal
import socket
import sys
import time


def addr(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("want IP:PORT, got %r" % text)
    return (host, int(port))


def fmt(a):
    return "%s:%d" % (a[0], a[1])


def touch(path):
    if path:
        with open(path, "w", encoding="ascii") as f:
            f.write("ready\n")


def hard_cap(seconds):
    # Socket timeouts bound each call; the alarm bounds the whole process,
    # whatever the kernel or a peer does.
    signal.signal(signal.SIGALRM, lambda *_: os._exit(124))
    signal.alarm(max(1, int(seconds + 2)))


def sip_invite(private_ip):
    # A minimal but well-formed INVITE (RFC 3261 section 8.1.1) with an SDP
    # offer (RFC 4566): exactly the fields a SIP ALG would rewrite.
    sdp = (
        "v=0\r\n"
        "o=probe 1 1 IN IP4 %(ip)s\r\n"
        "s=-\r\n"
        "c=IN IP4 %(ip)s\r\n"
        "t=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n" % {"ip": private_ip}
    )
    head = (
        "INVITE sip:probe@203.0.113.10 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP %(ip)s:5060;branch=z9hG4bK-labprobe-1\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:x@%(ip)s>;tag=lp1\r\n"
        "To: <sip:probe@203.0.113.10>\r\n"
        "Call-ID: labprobe-1@%(ip)s\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:x@%(ip)s>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: %(len)d\r\n"
        "\r\n" % {"ip": private_ip, "len": len(sdp)}
    )
    return (head + sdp).encode("ascii")


def cmd_echo(a):
    hard_cap(a.timeout)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    u.bind(a.bind)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(a.bind)
    t.listen(8)
    touch(a.ready)
    end = time.monotonic() + a.timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return 0
        rd, _, _ = select.select([u, t], [], [], left)
        if u in rd:
            try:
                _, src = u.recvfrom(65535)
                u.sendto(("seen %s\n" % fmt(src)).encode(), src)
            except OSError:
                pass
        if t in rd:
            try:
                c, src = t.accept()
                c.settimeout(0.5)
                c.sendall(("seen %s\n" % fmt(src)).encode())
                c.close()
            except OSError:
                pass


def parse_seen(data):
    text = data.decode("ascii", "replace").strip()
    return text[5:] if text.startswith("seen ") else "?" + text[:40]


def send_tcp(a):
    rc = 0
    for dst in a.to:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(a.reply_timeout)
        try:
            s.bind(a.bind)
            s.connect(dst)
            data = s.recv(256)
            print("reply to=%s seen=%s" % (fmt(dst), parse_seen(data)))
        except socket.timeout:
            print("error to=%s ETIMEDOUT" % fmt(dst))
            rc = 1
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            print("error to=%s %s" % (fmt(dst), name))
            rc = 1
        finally:
            s.close()
    touch(a.ready)
    return rc


def cmd_send(a):
    hard_cap(a.reply_timeout * len(a.to) + a.linger)
    if a.tcp:
        return send_tcp(a)
    if a.sip:
        payload = sip_invite(a.sip)
    else:
        payload = (a.data or "probe").encode()
    if a.dump:
        with open(a.dump, "wb") as f:
            f.write(payload)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(a.bind)
    rc = 0
    for dst in a.to:
        s.sendto(payload, dst)
        if a.reply_timeout <= 0:
            print("sent to=%s" % fmt(dst))
            continue
        end = time.monotonic() + a.reply_timeout
        got = None
        while got is None:
            left = end - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data, src = s.recvfrom(65535)
            except socket.timeout:
                break
            except OSError as e:
                # ICMP errors surface on a later recv on Linux; report them.
                got = "error " + errno.errorcode.get(e.errno, str(e.errno))
                break
            if src == dst:
                got = "seen=" + parse_seen(data)
            else:
                print("stray from=%s len=%d" % (fmt(src), len(data)))
        if got is None:
            print("noreply to=%s" % fmt(dst))
            rc = 1
        else:
            print("reply to=%s %s" % (fmt(dst), got))
    sys.stdout.flush()
    touch(a.ready)
    end = time.monotonic() + a.linger
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, src = s.recvfrom(65535)
        except socket.timeout:
            break
        except OSError:
            continue
        print("stray from=%s len=%d" % (fmt(src), len(data)))
        sys.stdout.flush()
    return rc


def cmd_recv(a):
    hard_cap(a.timeout)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(a.bind)
    touch(a.ready)
    s.settimeout(a.timeout)
    try:
        data, src = s.recvfrom(65535)
    except socket.timeout:
        print("timeout")
        return 1
    if a.save:
        with open(a.save, "wb") as f:
            f.write(data)
    print("from=%s len=%d" % (fmt(src), len(data)))
    return 0


def main():
    p = argparse.ArgumentParser(prog="labprobe.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--bind", type=addr, required=True)
    e.add_argument("--timeout", type=float, default=5.0)
    e.add_argument("--ready")
    s = sub.add_parser("send")
    s.add_argument("--bind", type=addr, required=True)
    s.add_argument("--to", type=addr, action="append", required=True)
    s.add_argument("--tcp", action="store_true")
    s.add_argument("--sip", metavar="PRIVATE_IP")
    s.add_argument("--data")
    s.add_argument("--dump")
    s.add_argument("--reply-timeout", type=float, default=0.5)
    s.add_argument("--linger", type=float, default=0.0)
    s.add_argument("--ready")
    r = sub.add_parser("recv")
    r.add_argument("--bind", type=addr, required=True)
    r.add_argument("--timeout", type=float, default=1.0)
    r.add_argument("--ready")
    r.add_argument("--save")
    a = p.parse_args()
    return {"echo": cmd_echo, "send": cmd_send, "recv": cmd_recv}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
