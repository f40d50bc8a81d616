#!/usr/bin/env python3
"""Sends broken SIP messages to sipnatd over UDP and TCP and records what
comes back.

Usage: malformed.py PROXY_IP PROXY_PORT LOCAL_IP LOCAL_PORT

Every case prints one line "transport case result" where result is the
status code of the first response ("400"), "none" (nothing within the
wait), or "closed" (TCP connection closed without a response).  Each case
has an expectation:
  400  a response is possible (parseable start line, a usable Via) and
       must be 400 Bad Request (RFC 3261 section 16.3 item 1, 8.2.2);
  none the message is not SIP enough to answer: nothing may come back;
  any  recorded only (several answers are defensible); must not crash.
Exit status 1 when an expectation is not met, 2 on a usage error.
Standard library only.
"""

import socket
import sys
import time

WAIT = 1.0  # seconds to wait for a response


def request(proxy, local, case, transport, *, start=None, drop=(), extra=(),
            body=b"", content_length=None, via=None):
    """Builds an OPTIONS to sipnatd's own URI with the given damage."""
    ruri = "sip:%s:%d" % proxy
    if transport == "TCP":
        ruri += ";transport=tcp"
    branch = "z9hG4bK-mal-%s-%s" % (case, transport)
    hdrs = [
        ("Via", via if via is not None else
         "SIP/2.0/%s %s:%d;branch=%s;rport" % (transport, local[0], local[1], branch)),
        ("Max-Forwards", "70"),
        ("From", "<sip:mal@%s>;tag=%s" % (local[0], case)),
        ("To", "<%s>" % ruri),
        ("Call-ID", "%s-%s@%s" % (case, transport, local[0])),
        ("CSeq", "1 OPTIONS"),
    ]
    hdrs = [(k, v) for k, v in hdrs if k not in drop]
    hdrs += list(extra)
    cl = str(len(body)) if content_length is None else content_length
    hdrs.append(("Content-Length", cl))
    first = start if start is not None else "OPTIONS %s SIP/2.0" % ruri
    text = first + "\r\n" + "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
    return text.encode("latin-1") + body


def cases(proxy, local, transport):
    """(name, expectation, payload or callable) for one transport."""
    def r(case, **kw):
        return request(proxy, local, case, transport, **kw)

    big = 100 * 1024 if transport == "TCP" else 60 * 1024
    out = [
        ("valid", "200", r("valid")),
        ("bad-start-line", "none", r("bad-start-line", start="HELLO THERE")),
        # Sofia cannot parse a request line with a broken URI at all, so
        # it is garbage to it (no response) rather than a 400.
        ("bad-request-uri", "any", r("bad-request-uri", start="OPTIONS sip:[zz SIP/2.0")),
        ("bad-version", "any", r("bad-version", start="OPTIONS sip:%s:%d SIP/7.0" % proxy)),
        ("missing-via", "none", r("missing-via", drop=("Via",))),
        ("bad-via", "any", r("bad-via", via="this is not a via")),
        ("missing-cseq", "400", r("missing-cseq", drop=("CSeq",))),
        ("bad-cseq", "400", r("bad-cseq", drop=("CSeq",)).replace(
            b"Content-Length", b"CSeq: banana OPTIONS\r\nContent-Length")),
        ("cseq-method-mismatch", "400", r("cseq-method-mismatch", drop=("CSeq",)).replace(
            b"Content-Length", b"CSeq: 1 INVITE\r\nContent-Length")),
        ("missing-call-id", "400", r("missing-call-id", drop=("Call-ID",))),
        ("missing-from", "400", r("missing-from", drop=("From",))),
        ("missing-to", "400", r("missing-to", drop=("To",))),
        ("content-length-negative", "400",
         r("content-length-negative", body=b"x", content_length="-5")),
        ("content-length-non-numeric", "400",
         r("content-length-non-numeric", body=b"x", content_length="ten")),
        ("huge-max-forwards", "any", r("huge-max-forwards", drop=("Max-Forwards",), extra=(
            ("Max-Forwards", "99999999999999999999999"),))),
        ("big-header", "any", r("big-header", extra=(("X-Big", "a" * big),))),
        ("nul-bytes", "any", r("nul-bytes").replace(b"Max-Forwards: 70",
                                                    b"Max-Forwards: 7\x000")),
        ("binary-garbage", "none",
         bytes((i * 7919 + 13) % 256 for i in range(1500))),
    ]
    if transport == "UDP":
        # A datagram is the whole message (RFC 3261 section 18.3).
        out.append(("content-length-too-big", "any",
                    r("content-length-too-big", body=b"v=0\r\n", content_length="500")))
    else:
        out.append(("truncated-headers-closed", "none",
                    r("truncated-headers-closed")[:60]))
        out.append(("unterminated", "none",
                    r("unterminated")[:-2]))  # no blank line: never complete
        out.append(("content-length-too-big", "none",
                    r("content-length-too-big", body=b"v=0\r\n", content_length="500")))
    return out


def status_of(data):
    if data.startswith(b"SIP/2.0 ") and len(data) >= 11:
        return data[8:11].decode("latin-1", "replace")
    return "junk"


def run_udp(proxy, local, name, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(local)
    s.settimeout(WAIT)
    try:
        s.sendto(payload, proxy)
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            try:
                data, _ = s.recvfrom(70000)
            except socket.timeout:
                break
            # Skip provisional responses and stray keepalives.
            st = status_of(data)
            if st.startswith("1") or data.strip() == b"":
                continue
            return st
        return "none"
    finally:
        s.close()


def run_tcp(proxy, local, name, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((local[0], 0))
    s.settimeout(WAIT)
    try:
        s.connect(proxy)
        s.sendall(payload)
        if name == "truncated-headers-closed":
            s.shutdown(socket.SHUT_WR)
        buf = b""
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            try:
                chunk = s.recv(70000)
            except socket.timeout:
                break
            except ConnectionResetError:
                return "closed" if not buf else status_of(buf)
            if not chunk:
                return status_of(buf) if buf else "closed"
            buf += chunk
            if b"\r\n\r\n" in buf:
                return status_of(buf)
        return status_of(buf) if buf else "none"
    finally:
        s.close()


def main(argv):
    if len(argv) != 5:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    proxy = (argv[1], int(argv[2]))
    local = (argv[3], int(argv[4]))
    bad = 0
    for transport, run in (("UDP", run_udp), ("TCP", run_tcp)):
        for name, expect, payload in cases(proxy, local, transport):
            got = run(proxy, local, name, payload)
            if expect == "any":
                ok = True
            elif expect == "none":
                ok = got in ("none", "closed")
            else:
                ok = got == expect
            print("%s %s %s expected %s%s" % (transport, name, got, expect,
                                             "" if ok else "  <-- MISMATCH"))
            sys.stdout.flush()
            if not ok:
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
