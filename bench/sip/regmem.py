#!/usr/bin/env python3
"""regmem: memory per registered NATed device in sipnatd.

    python3 bench/sip/regmem.py --sipnatd /path/to/sipnatd [--devices 100000]

Starts sipnatd on 127.0.0.1 with a registrar stand-in (this script, in a
child process on 127.0.0.2, answering every REGISTER with 200, its Contact
and its Path) as upstream, then registers --devices distinct AORs, each
with a private Contact (so sipnatd sees them behind NAT), from --sockets
source ports on 127.0.0.3, at --rate REGISTERs/s.  It waits until every
transaction of the run has ended (nta keeps a UDP non-INVITE server
transaction 64*T1 = 32 s after its answer, RFC 3261 Timer J) and sipnatd
has handed the freed memory back (it does that every 30 s), then reports
VmRSS growth / registered devices, and the peak (VmHWM) for the burst.
The number of bindings is read with sipnatctl.

Loopback only; every process started here is stopped by its PID; every
wait is bounded.  Python 3 standard library only.  One JSON line is
printed and appended to --out.
"""
import argparse
import json
import multiprocessing
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PROXY_IP, REG_IP, DEV_IP = "127.0.0.1", "127.0.0.2", "127.0.0.3"
HERE = os.path.dirname(os.path.abspath(__file__))


def registrar(port, secs):
    """Answers REGISTER with 200 (Contact;expires=3600 and Path copied)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((REG_IP, port))
    s.settimeout(1.0)
    end = time.time() + secs
    while time.time() < end:
        try:
            data, src = s.recvfrom(65535)
        except socket.timeout:
            continue
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if not head[0].startswith(b"REGISTER"):
            continue
        out = [b"SIP/2.0 200 OK"]
        for h in head[1:]:
            k = h.split(b":", 1)[0].strip().lower()
            if k in (b"via", b"v", b"from", b"f", b"call-id", b"i", b"cseq", b"path"):
                out.append(h)
            elif k in (b"to", b"t"):
                out.append(h + b";tag=rm")
            elif k in (b"contact", b"m"):
                out.append(h + b";expires=3600")
        out.append(b"Content-Length: 0")
        s.sendto(b"\r\n".join(out) + b"\r\n\r\n", src)


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def oncpu_ns(pid):
    """On-CPU nanoseconds of every thread of pid (schedstat)."""
    tot = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                tot += int(f.read().split()[0])
    except (OSError, ValueError):
        pass
    return tot


def bindings(ctl, sock):
    try:
        out = subprocess.run([ctl, "-s", sock, "status"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        p = line.split()
        if len(p) >= 2 and p[0] == "registrations":
            try:
                return int(p[1])
            except ValueError:
                return None
    return None


def stop(p, secs=10):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(secs)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sipnatd", default=os.environ.get("SIPNATD", "sipnatd"))
    ap.add_argument("--sipnatctl", help="default: next to --sipnatd")
    ap.add_argument("--devices", type=int, default=100000)
    ap.add_argument("--rate", type=int, default=2000, help="REGISTERs per second")
    ap.add_argument("--sockets", type=int, default=1000, help="source ports (NAT flows)")
    ap.add_argument("--keepalive", default="crlf", choices=("crlf", "options", "off"),
                    help="sipnatd's keepalive (options: the devices here never answer)")
    ap.add_argument("--settle", type=float, default=70.0,
                    help="seconds to wait after the last answer (> 32 s Timer J + 30 s trim)")
    ap.add_argument("--port", type=int, default=26160)
    ap.add_argument("--reg-port", type=int, default=26170)
    ap.add_argument("--out", help="JSON lines file (default bench/results/regmem-DATE.jsonl)")
    a = ap.parse_args()
    if a.devices < 1 or a.devices > 1000000 or a.rate < 1 or a.rate > 20000:
        sys.exit("--devices must be in [1, 1e6] and --rate in [1, 20000]")
    ctl = a.sipnatctl or os.path.join(os.path.dirname(os.path.abspath(a.sipnatd)), "sipnatctl")
    if not a.out:
        a.out = os.path.join(HERE, "..", "results", time.strftime("regmem-%Y%m%d-%H%M.jsonl"))
    tmp = tempfile.mkdtemp(prefix="regmem.")
    budget = a.devices / a.rate + a.settle + 120
    reg = multiprocessing.Process(target=registrar, args=(a.reg_port, budget), daemon=True)
    reg.start()
    conf = os.path.join(tmp, "sipnat.conf")
    with open(conf, "w") as f:
        f.write("[sip]\nlisten = udp:%s:%d\nupstream = sip:%s:%d\nstate_dir = %s/state\n"
                "keepalive = %s\n[relay]\nmode = never\n[control]\nsocket = %s/ctl.sock\n"
                "[log]\nlevel = warn\n" % (PROXY_IP, a.port, REG_IP, a.reg_port, tmp,
                                           a.keepalive, tmp))
    log = open(os.path.join(tmp, "sipnatd.log"), "w")
    d = subprocess.Popen([a.sipnatd, "-f", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    socks = []
    try:
        time.sleep(2.0)
        if d.poll() is not None:
            sys.exit("sipnatd exited; see %s" % log.name)
        rss0 = status_kb(d.pid, "VmRSS")
        for _ in range(a.sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((DEV_IP, 0))
            s.setblocking(False)
            socks.append(s)
        ok = sent = 0
        t0 = time.time()
        cpu0 = oncpu_ns(d.pid)

        def drain(timeout):
            nonlocal ok
            r, _, _ = select.select(socks, [], [], timeout)
            for s in r:
                while True:
                    try:
                        data = s.recv(65535)
                    except BlockingIOError:
                        break
                    if data.startswith(b"SIP/2.0 200"):
                        ok += 1

        dest = (PROXY_IP, a.port)
        while sent < a.devices:
            due = int((time.time() - t0) * a.rate) + 1
            while sent < min(due, a.devices):
                i = sent
                s = socks[i % len(socks)]
                # The Request-URI names the upstream: sipnatd refuses a
                # device's request for any other destination.
                msg = ("REGISTER sip:%s:%d SIP/2.0\r\n"
                       "Via: SIP/2.0/UDP 192.168.%d.%d:5060;branch=z9hG4bKrm%d;rport\r\n"
                       "From: <sip:d%d@example.net>;tag=f%d\r\nTo: <sip:d%d@example.net>\r\n"
                       "Call-ID: rm%d@192.168.%d.%d\r\nCSeq: 1 REGISTER\r\n"
                       "Contact: <sip:d%d@192.168.%d.%d:5060>\r\nExpires: 3600\r\n"
                       "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                       % (REG_IP, a.reg_port, (i >> 8) & 255, i & 255, i, i, i, i, i,
                          (i >> 8) & 255, i & 255,
                          i, (i >> 8) & 255, i & 255))
                try:
                    s.sendto(msg.encode(), dest)
                except BlockingIOError:
                    pass
                sent += 1
            drain(0.002)
            if d.poll() is not None:
                sys.exit("sipnatd died during the run; see %s" % log.name)
        t_sent = time.time()
        end = time.time() + 10
        while ok < sent and time.time() < end:
            drain(0.1)
        t_done = time.time()
        cpu1 = oncpu_ns(d.pid)
        hwm = status_kb(d.pid, "VmHWM")
        rss_peak = status_kb(d.pid, "VmRSS")
        end = time.time() + a.settle
        while time.time() < end:
            time.sleep(1.0)
            drain(0)  # keepalives and stray retransmissions
        n = bindings(ctl, os.path.join(tmp, "ctl.sock"))
        rss1 = status_kb(d.pid, "VmRSS")
        res = {
            "bench": "regmem", "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "devices_sent": sent, "answered_200": ok, "bindings": n,
            "rate_req": a.rate, "rate_achieved": round(sent / max(t_sent - t0, 1e-3)),
            "send_s": round(t_sent - t0, 1), "answer_wait_s": round(t_done - t_sent, 1),
            "sockets": a.sockets, "keepalive": a.keepalive, "settle_s": a.settle,
            "proxy_cpu_us_per_register": round((cpu1 - cpu0) / 1000.0 / max(ok, 1), 1),
            "rss_kb_before": rss0, "rss_kb_burst": rss_peak, "hwm_kb": hwm, "rss_kb_after": rss1,
            "bytes_per_device": round((rss1 - rss0) * 1024 / n) if n else None,
            "burst_bytes_per_device": round((hwm - rss0) * 1024 / n) if n else None,
        }
        line = json.dumps(res, sort_keys=True)
        print(line)
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "a") as f:
            f.write(line + "\n")
    finally:
        for s in socks:
            s.close()
        stop(d)
        log.close()
        reg.terminate()
        reg.join(5)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
