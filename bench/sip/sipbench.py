#!/usr/bin/env python3
"""sipbench: SIP proxy call rate per core, sipnatd next to Kamailio.

For every system named in --systems, in one run and with the same CPU
pinning, this starts the proxy alone on --proxy-cpu, a SIPp UAS (the
"PBX", 127.0.0.2) and a SIPp UAC (the "device", 127.0.0.3) on --load-cpu,
and sweeps call rates:

    sipp uac --> proxy (127.0.0.1) --> sipp uas

Each step is bounded (-m rate*secs calls, -timeout, and a wall-clock limit
here).  A step passes when fewer than 1 % of the requested calls failed
(calls that never completed count as failed).  The sweep goes up the rate
list until a step fails, then bisects between the last pass and the first
failure.  Per step it records calls/s, the busy fraction of the proxy CPU
from /proc/stat, the proxy's own on-CPU time from schedstat, calls/s per
core, retransmissions, and the proxy's memory (VmRSS, VmHWM, Pss) before,
at the peak of, and after the step.  A "hold" step with long calls puts
many calls in flight at once to estimate memory per call in flight.

Output: one JSON object per measurement, printed and appended to --out;
a markdown summary (with the sipnatd/Kamailio ratio) at the end.

Only loopback addresses are used; every process started here is stopped by
its PID (SIGTERM to the process group it leads, then SIGKILL).
Python 3 standard library only.
"""
import argparse
import csv
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PROXY_IP = "127.0.0.1"
UAS_IP = "127.0.0.2"
UAC_IP = "127.0.0.3"
HERE = os.path.dirname(os.path.abspath(__file__))
FAIL_LIMIT_PCT = 1.0

# --- SIPp scenarios ------------------------------------------------------
#
# SIPp's built-in uac ignores Record-Route and its built-in uas does not
# copy it, so in-dialog requests would reach the proxy as requests to the
# proxy itself.  These scenarios keep a proper route set (RFC 3261 sections
# 12.1.1 and 12.1.2): ACK and BYE carry Route and go through the proxy, as
# they do with real phones.  The call holds for -d milliseconds.  The UAS
# answers 200 without a 180: a multi-process proxy (Kamailio's children)
# may reorder a 180 behind the 200, which SIPp counts as a failed call.

UAC_CALL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench uac">
  <send retrans="500"><![CDATA[

INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:dev[call_number]@[local_ip]>;tag=[pid]b[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:dev[call_number]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=dev 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true" rtd="true"/>
  <send><![CDATA[

ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:dev[call_number]@[local_ip]>;tag=[pid]b[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause/>
  <send retrans="500"><![CDATA[

BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:dev[call_number]@[local_ip]>;tag=[pid]b[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""

UAS_CALL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench uas">
  <recv request="INVITE" crlf="true"/>
  <send retrans="500"><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]u[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:pbx@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
  <recv request="ACK" optional="true" crlf="true"/>
  <recv request="BYE"/>
  <send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <timewait milliseconds="2000"/>
</scenario>
"""

# One REGISTER per call number, each for a distinct address of record.
UAC_REG = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench register">
  <send retrans="500"><![CDATA[

REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:dev[call_number]@[remote_ip]>;tag=[pid]r[call_number]
To: <sip:dev[call_number]@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:dev[call_number]@[local_ip]:[local_port]>
Max-Forwards: 70
Expires: 600
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""

UAS_REG = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench registrar">
  <recv request="REGISTER"/>
  <send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]g[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Contact:];expires=600
[last_Path:]
Content-Length: 0

]]></send>
</scenario>
"""

# --- /proc helpers ---------------------------------------------------------


def cpu_times():
    """Per-CPU jiffies from /proc/stat: {cpu: [user..steal]}."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                p = line.split()
                out[int(p[0][3:])] = [int(x) for x in p[1:9]]
    return out


def busy_fraction(a, b, cpu):
    """Busy (user+nice+system+irq+softirq+steal) share of one CPU."""
    d = [y - x for x, y in zip(a[cpu], b[cpu])]
    total = sum(d)
    return (total - d[3] - d[4]) / total if total else 0.0


def session_pids(sid):
    """Processes of the session led by `sid` (the proxy and its children)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
            if int(s[s.rindex(")") + 2:].split()[3]) == sid:
                pids.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def oncpu_ns(pids):
    """On-CPU nanoseconds of every thread of `pids` (schedstat is exact,
    unlike the tick-sampled /proc/stat)."""
    tot = 0
    for pid in pids:
        try:
            for t in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                    tot += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return tot


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def pss_kb(pids):
    """Sum of Pss: memory of a multi-process proxy without counting shared
    pages once per process."""
    tot = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        tot += int(line.split()[1])
                        break
        except (OSError, ValueError):
            pass
    return tot


def memory(sysd):
    pids = session_pids(sysd.pid)
    return {"rss_kb": status_kb(sysd.pid, "VmRSS"), "hwm_kb": status_kb(sysd.pid, "VmHWM"),
            "pss_kb": pss_kb(pids), "nproc": len(pids)}


def port_free(ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_port(ip, port, free, secs):
    end = time.time() + secs
    while time.time() < end:
        if port_free(ip, port) == free:
            return True
        time.sleep(0.1)
    return False


def stop_pid(p, secs=10):
    """SIGTERM to the process group `p` leads (it was started with
    start_new_session), bounded wait, then SIGKILL."""
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(secs)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(5)
    except ProcessLookupError:
        pass


# --- systems under test ----------------------------------------------------


class System:
    """One proxy: how to start it pinned on the proxy CPU."""

    def __init__(self, a, name, mode="invite"):
        self.a = a
        self.name = name
        self.mode = mode
        self.p = None
        self.dir = os.path.join(a.tmp, name)
        os.makedirs(self.dir, exist_ok=True)

    @property
    def pid(self):
        return self.p.pid

    def argv(self):
        a = self.a
        if self.name.startswith("sipnatd"):
            relay = "always" if self.name == "sipnatd-relay" else "never"
            conf = os.path.join(self.dir, "sipnat.conf")
            # No keepalives: the devices are SIPp, which would not answer
            # them, and the Kamailio script pings nobody either.
            with open(conf, "w") as f:
                f.write("[sip]\nlisten = udp:%s:%d\nupstream = sip:%s:%d\n"
                        "state_dir = %s/state\nkeepalive = off\n%s"
                        "[relay]\nmode = %s\n"
                        "[control]\nsocket = %s/control.sock\n"
                        "[log]\nlevel = warn\n"
                        % (PROXY_IP, a.port, UAS_IP, a.uas_port, self.dir,
                           "".join(l + "\n" for l in a.sipnatd_sip), relay, self.dir))
            return [a.sipnatd, "-f", "-c", conf]
        natreg = ["-A", "WITH_NATREG"] if self.mode == "register" else []
        return [a.kamailio, "-f", os.path.join(HERE, "kamailio.cfg"), "-DD", "-E"] + natreg + [
                "-m", "2048", "-M", "32", "-Y", self.dir,
                "-A", "LISTEN_SOCK=udp:%s:%d" % (PROXY_IP, a.port),
                "-A", 'UAS_HOST="%s"' % UAS_IP, "-A", 'UAS_PORT="%d"' % a.uas_port,
                "-A", "CHILDREN=%d" % a.kam_children]

    def start(self):
        if not wait_port(PROXY_IP, self.a.port, True, 10):
            raise RuntimeError("port %s:%d busy" % (PROXY_IP, self.a.port))
        self.log = open(os.path.join(self.dir, "proxy.log"), "w")
        self.p = subprocess.Popen(["taskset", "-c", str(self.a.proxy_cpu)] + self.argv(),
                                  stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True, cwd=self.dir)
        if not wait_port(PROXY_IP, self.a.port, False, 10) or self.p.poll() is not None:
            self.stop()
            raise RuntimeError("%s did not start, see %s/proxy.log" % (self.name, self.dir))
        time.sleep(1.0)  # kamailio forks its children after binding
        if self.p.poll() is not None:
            raise RuntimeError("%s exited, see %s/proxy.log" % (self.name, self.dir))

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self):
        stop_pid(self.p)
        if self.p is not None:
            self.log.close()


def sipp_base(a, cwd_dir, tag):
    return ["taskset", "-c", str(a.load_cpu), "sipp", "-nostdin", "-max_socket", "4096",
            "-buff_size", str(1 << 20), "-trace_err", "-error_file",
            os.path.join(cwd_dir, "%s_errors.log" % tag)]


def start_uas(a, mode, d):
    scen = os.path.join(a.tmp, "uas_%s.xml" % mode)
    argv = sipp_base(a, d, "uas_" + mode) + [
        "-sf", scen, "-i", UAS_IP, "-p", str(a.uas_port), "-mi", UAS_IP]
    if not wait_port(UAS_IP, a.uas_port, True, 10):
        raise RuntimeError("port %s:%d busy" % (UAS_IP, a.uas_port))
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         cwd=d, start_new_session=True)
    if not wait_port(UAS_IP, a.uas_port, False, 5):
        stop_pid(p)
        raise RuntimeError("sipp uas did not start")
    return p


def stat_rows(path):
    """Rows of a SIPp -trace_stat file: a list of dicts with the epoch of
    the row ("t", from CurrentTime, the same clock as time.time()) and the
    cumulative counters."""
    try:
        rows = list(csv.reader(open(path), delimiter=";"))
    except OSError:
        return []
    if len(rows) < 2:
        return []
    hdr = rows[0]
    out = []
    for r in rows[1:]:
        d = dict(zip(hdr, r))
        try:
            d["t"] = float(d["CurrentTime"].split()[-1])
        except (KeyError, ValueError, IndexError):
            continue
        out.append(d)
    return out


def num(d, k):
    try:
        return int(float(d.get(k, 0) or 0))
    except ValueError:
        return 0


def at(samples, t):
    """The (time, /proc/stat, proxy ns, load ns) sample nearest to t."""
    return min(samples, key=lambda x: abs(x[0] - t))


def run_step(a, sysd, mode, rate, secs, hold_ms, kind, uas=None):
    """One bounded load step; returns the measurement dict.

    Rates and CPU shares are taken over the window in which SIPp was
    starting calls (from its 1 s statistics rows, matched to our own CPU
    samples by time), so that a few slow calls waiting for -timeout at the
    end do not dilute the figures.  cps_per_cpu_s is the whole step: calls
    completed per second of proxy on-CPU time."""
    calls = max(int(rate * secs), 1)
    d = sysd.dir
    tag = "%s_%s_%d_%d" % (kind, mode, rate, hold_ms)
    stf = os.path.join(d, tag + ".csv")
    for f in glob.glob(stf + "*"):
        os.remove(f)
    wall = secs + hold_ms / 1000.0 + 25
    scen = os.path.join(a.tmp, "uac_%s.xml" % mode)
    argv = sipp_base(a, d, tag) + [
        "%s:%d" % (PROXY_IP, a.port), "-sf", scen, "-s", "bench",
        "-i", UAC_IP, "-p", str(a.uac_port), "-mi", UAC_IP,
        "-r", str(rate), "-m", str(calls), "-l", str(max(int(rate * (hold_ms / 1000.0 + 8)), 200)),
        "-d", str(hold_ms), "-timeout", str(int(wall)), "-timeout_error",
        "-recv_timeout", "10000", "-trace_stat", "-stf", stf, "-fd", "1"]
    if not wait_port(UAC_IP, a.uac_port, True, 10):
        raise RuntimeError("port %s:%d busy" % (UAC_IP, a.uac_port))
    pids = session_pids(sysd.pid)
    m0 = memory(sysd)
    t0 = time.time()
    uac = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           cwd=d, start_new_session=True)
    load = [uac.pid] + ([uas.pid] if uas else [])
    samples = [(t0, cpu_times(), oncpu_ns(pids), oncpu_ns(load))]
    peak = dict(m0)
    try:
        while uac.poll() is None and time.time() - t0 < wall + 5:
            time.sleep(0.2)
            samples.append((time.time(), cpu_times(), oncpu_ns(pids), oncpu_ns(load)))
            m = memory(sysd)
            for k in ("rss_kb", "pss_kb"):
                peak[k] = max(peak[k], m[k])
            if max(m["rss_kb"], m["pss_kb"]) > a.max_mem_mb * 1024:
                print("%s: memory above %d MB, step stopped" % (sysd.name, a.max_mem_mb),
                      file=sys.stderr)
                break
    finally:
        stop_pid(uac, 3)
    samples.append((time.time(), cpu_times(), oncpu_ns(pids), oncpu_ns(load)))
    m1 = memory(sysd)
    rows = stat_rows(stf)
    last = rows[-1] if rows else {}
    ok = num(last, "SuccessfulCall(C)")
    inflight = max([num(r, "CurrentCall") for r in rows] or [0])
    # Window: from the first statistics row to the first row at which all
    # calls had been started (at least 1 s; else, and for calls that hold,
    # the whole step).
    w0, w1 = (rows[0], rows[-1]) if rows else ({}, {})
    for r in rows:
        if num(r, "OutgoingCall(C)") >= calls:
            w1 = r
            break
    if not rows or w1["t"] - w0["t"] < 1.0 or hold_ms > 0:
        w0 = {"t": samples[0][0], "SuccessfulCall(C)": 0}
        w1 = {"t": samples[-1][0], "SuccessfulCall(C)": ok}
    s0, s1 = at(samples, w0["t"]), at(samples, w1["t"])
    dt = max(s1[0] - s0[0], 1e-3)
    cps = (num(w1, "SuccessfulCall(C)") - num(w0, "SuccessfulCall(C)")) / max(w1["t"] - w0["t"], 1e-3)
    busy = busy_fraction(s0[1], s1[1], a.proxy_cpu)
    sched = (s1[2] - s0[2]) / 1e9 / dt
    proxy_cpu_s = (samples[-1][2] - samples[0][2]) / 1e9
    res = {
        "system": sysd.name, "kind": kind, "mode": mode,
        "rate_req": rate, "calls_req": calls, "hold_ms": hold_ms,
        "successful": ok, "failed_sipp": num(last, "FailedCall(C)"),
        # calls that never completed (sipp stopped by -timeout) fail too
        "fail_pct": round(100.0 * (calls - ok) / calls, 3),
        "retrans": num(last, "Retransmissions(C)"),
        "elapsed_s": round(samples[-1][0] - t0, 2), "window_s": round(dt, 2),
        "cps": round(cps, 1),
        "proxy_cpu_busy": round(busy, 3),
        "load_cpu_busy": round(busy_fraction(s0[1], s1[1], a.load_cpu), 3),
        "proxy_sched_cores": round(sched, 3),
        "load_sched_cores": round((s1[3] - s0[3]) / 1e9 / dt, 3),
        "cps_per_core": round(cps / busy) if busy > 0.02 else None,
        "cps_per_core_sched": round(cps / sched) if sched > 0.02 else None,
        "cps_per_cpu_s": round(ok / proxy_cpu_s) if proxy_cpu_s > 0.01 else None,
        "peak_calls_in_flight": inflight,
        "rss_kb_before": m0["rss_kb"], "rss_kb_peak": peak["rss_kb"], "rss_kb_after": m1["rss_kb"],
        "hwm_kb_after": m1["hwm_kb"],
        "pss_kb_before": m0["pss_kb"], "pss_kb_peak": peak["pss_kb"], "pss_kb_after": m1["pss_kb"],
        "nproc": m1["nproc"], "proxy_alive": sysd.alive(), "sipp_rc": uac.returncode,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "host_cpus": os.cpu_count(),
    }
    res["passed"] = res["fail_pct"] < FAIL_LIMIT_PCT and res["proxy_alive"]
    # Memory that one step added, per call it started: includes state the
    # proxy keeps after a call ended (transactions lingering for 64*T1).
    res["pss_bytes_per_call_started"] = round((peak["pss_kb"] - m0["pss_kb"]) * 1024 / calls)
    if kind == "hold" and inflight > 0:
        res["pss_bytes_per_call"] = round((peak["pss_kb"] - m0["pss_kb"]) * 1024 / inflight)
        res["rss_bytes_per_call"] = round((peak["rss_kb"] - m0["rss_kb"]) * 1024 / inflight)
    return res


def emit(a, res):
    res["run"] = a.run_id
    line = json.dumps(res, sort_keys=True)
    print(line, flush=True)
    with open(a.out, "a") as f:
        f.write(line + "\n")


def settle(a, secs=2.0):
    """Lets retransmission timers and leftover transactions drain so that
    one step does not bill the next."""
    time.sleep(secs)


def sweep(a, sysd, mode, rates, uas):
    """Rates in ascending order until the first failure, then bisection."""
    results = []
    best, worst = None, None
    started = time.time()
    for r in rates:
        if time.time() - started > a.budget:
            break
        res = run_step(a, sysd, mode, r, a.secs, a.hold_ms if mode == "invite" else 0, "sweep", uas)
        emit(a, res)
        results.append(res)
        settle(a)
        if not sysd.alive():
            return results, best
        if res["passed"]:
            best = res
        else:
            worst = r
            break
    lo = best["rate_req"] if best else 0
    for _ in range(a.refine if worst else 0):
        mid = int(round((lo + worst) / 2.0 / 50.0) * 50)
        if mid <= lo or mid >= worst or time.time() - started > a.budget:
            break
        res = run_step(a, sysd, mode, mid, a.secs, a.hold_ms if mode == "invite" else 0, "refine", uas)
        emit(a, res)
        results.append(res)
        settle(a)
        if not sysd.alive():
            break
        if res["passed"]:
            lo, best = mid, res
        else:
            worst = mid
    return results, best


def write_scenarios(a):
    for name, text in (("uac_invite", UAC_CALL), ("uas_invite", UAS_CALL),
                       ("uac_register", UAC_REG), ("uas_register", UAS_REG)):
        with open(os.path.join(a.tmp, name + ".xml"), "w") as f:
            f.write(text)


def fmt(v, nd=0):
    if v is None:
        return "-"
    if isinstance(v, float) and nd:
        return "%.*f" % (nd, v)
    return "{:,}".format(int(round(v)))


def summary(a, best, holds, rows=()):
    """Markdown table of the best passing step per system and mode, with
    the ratio of each per-core figure to Kamailio's."""
    out = ["", "## SIP proxy benchmark (%s, proxy on CPU %d, load on CPU %d)" %
           (time.strftime("%Y-%m-%d %H:%M"), a.proxy_cpu, a.load_cpu), "",
           "| system | mode | highest rate < 1 %% failed (req) | calls/s | fail %% "
           "| CPU %d busy (/proc/stat) | proxy cores (schedstat) | load cores (schedstat) "
           "| per core (/proc/stat) | per core (schedstat) | calls per proxy CPU-s "
           "| ratio (/proc/stat) | ratio (schedstat) | ratio (CPU-s) |" % a.proxy_cpu,
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = ("cps_per_core", "cps_per_core_sched", "cps_per_cpu_s")
    for mode in a.modes:
        ref = best.get(("kamailio", mode))
        for name in a.systems:
            b = best.get((name, mode))
            if mode == "register" and name == "sipnatd-relay":
                continue
            if not b:
                out.append("| %s | %s | none passed |%s" % (name, mode, " |" * 11))
                continue
            ratios = []
            for k in keys:
                ok = ref and b[k] and ref[k]
                ratios.append("%.2f" % (b[k] / ref[k]) if ok else "-")
            out.append("| %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s |" % (
                name, mode, fmt(b["rate_req"]), fmt(b["cps"]), b["fail_pct"],
                b["proxy_cpu_busy"], b["proxy_sched_cores"], b["load_sched_cores"],
                fmt(b["cps_per_core"]), fmt(b["cps_per_core_sched"]), fmt(b["cps_per_cpu_s"]),
                " | ".join(ratios)))
    # Same offered rate, every system: CPU cost per call where all of them
    # were measured, which does not depend on where each sweep stopped.
    for mode in a.modes:
        names = [n for n in a.systems if not (mode == "register" and n == "sipnatd-relay")]
        per = {}
        for r in rows:
            if r["mode"] == mode and r["kind"] in ("sweep", "refine") and r["passed"]:
                per.setdefault(r["rate_req"], {})[r["system"]] = r
        common = sorted(k for k, v in per.items() if all(n in v for n in names))
        if not common or "kamailio" not in names:
            continue
        out += ["", "Calls (%s) per second of proxy CPU (schedstat, whole step) at the same "
                "offered rate, steps that passed:" % mode, "",
                "| rate | " + " | ".join(names) + " | " +
                " | ".join("%s/kamailio" % n for n in names if n != "kamailio") + " |",
                "|---|" + "---|" * (2 * len(names) - 1)]
        for rate in common:
            v = per[rate]
            cells = [fmt(v[n]["cps_per_cpu_s"]) for n in names]
            rat = []
            for n in names:
                if n == "kamailio":
                    continue
                x, y = v[n]["cps_per_cpu_s"], v["kamailio"]["cps_per_cpu_s"]
                rat.append("%.2f" % (x / y) if x and y else "-")
            out.append("| %s | %s | %s |" % (fmt(rate), " | ".join(cells), " | ".join(rat)))
    if holds:
        out += ["", "Memory (hold step: calls of %d ms at %d calls/s):" % (a.hold_long_ms, a.hold_rate), "",
                "| system | peak calls in flight | VmRSS before kB | VmRSS peak kB | VmHWM after kB "
                "| Pss before kB | Pss peak kB | Pss bytes per call in flight | Pss bytes per call started |",
                "|---|---|---|---|---|---|---|---|---|"]
        for h in holds:
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                h["system"], fmt(h["peak_calls_in_flight"]), fmt(h["rss_kb_before"]),
                fmt(h["rss_kb_peak"]), fmt(h["hwm_kb_after"]), fmt(h["pss_kb_before"]),
                fmt(h["pss_kb_peak"]), fmt(h.get("pss_bytes_per_call")),
                fmt(h.get("pss_bytes_per_call_started"))))
    out += ["", "Raw measurements: %s" % a.out,
            "Per core = calls/s divided by the busy share of the proxy CPU over the sending "
            "window; below saturation it is an extrapolation.  /proc/stat is tick-sampled and "
            "under-counts this bursty load on a VM: trust the schedstat columns.  Compare "
            "ratios, not absolute numbers."]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", default="sipnatd,kamailio",
                    help="comma list of sipnatd (relay mode never), sipnatd-relay "
                         "(relay mode always, media anchored), kamailio")
    ap.add_argument("--modes", default="invite", help="invite and/or register")
    ap.add_argument("--rates", default="500,1000,1500,2000,2500,3000,3500,4000",
                    help="ascending calls/s for INVITE steps")
    ap.add_argument("--reg-rates", default="2000,4000,6000,8000,10000",
                    help="ascending REGISTER/s for register steps")
    ap.add_argument("--secs", type=float, default=5.0, help="seconds of load per step")
    ap.add_argument("--hold-ms", type=int, default=0, help="call duration in sweep steps")
    ap.add_argument("--refine", type=int, default=2, help="bisection steps after a failure")
    ap.add_argument("--budget", type=float, default=150.0,
                    help="seconds of sweeping per system and mode before giving up")
    ap.add_argument("--hold-rate", type=int, default=200, help="calls/s of the memory step (0: skip)")
    ap.add_argument("--hold-long-ms", type=int, default=5000, help="call duration of the memory step")
    ap.add_argument("--max-mem-mb", type=int, default=4096,
                    help="stop a step when the proxy grows beyond this")
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("--port", type=int, default=26060, help="proxy UDP port on 127.0.0.1")
    ap.add_argument("--uas-port", type=int, default=26070)
    ap.add_argument("--uac-port", type=int, default=26061)
    ap.add_argument("--kam-children", type=int, default=4)
    ap.add_argument("--sipnatd-sip", action="append", default=[], metavar="LINE",
                    help="extra [sip] line for sipnatd, e.g. 'transaction_timeout = 8' (repeatable)")
    ap.add_argument("--sipnatd", default=os.environ.get("SIPNATD", "sipnatd"))
    ap.add_argument("--kamailio", default=shutil.which("kamailio") or "/usr/sbin/kamailio")
    ap.add_argument("--out", help="JSON lines file (default bench/results/sip-DATE.jsonl)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--summarize", metavar="JSONL",
                    help="print the summary of an earlier run's file and exit")
    a = ap.parse_args()
    a.systems = [s for s in a.systems.split(",") if s]
    a.modes = [m for m in a.modes.split(",") if m]
    for s in a.systems:
        if s not in ("sipnatd", "sipnatd-relay", "kamailio"):
            sys.exit("unknown system %s" % s)
    for m in a.modes:
        if m not in ("invite", "register"):
            sys.exit("unknown mode %s" % m)
    if a.summarize:
        best, holds, seen = {}, [], []
        for line in open(a.summarize):
            r = json.loads(line)
            if r["system"] not in seen:
                seen.append(r["system"])
            if r["kind"] == "hold":
                holds.append(r)
                a.hold_rate, a.hold_long_ms = r["rate_req"], r["hold_ms"]
            elif r["passed"]:
                k = (r["system"], r["mode"])
                if k not in best or r["rate_req"] > best[k]["rate_req"]:
                    best[k] = r
        a.systems, a.out = seen, a.summarize
        a.modes = [m for m in ("invite", "register") if any(k[1] == m for k in best)]
        print(summary(a, best, holds, [json.loads(x) for x in open(a.summarize)]))
        return
    if a.secs <= 0 or a.secs > 60 or a.budget > 1200:
        sys.exit("--secs must be in (0, 60] and --budget at most 1200")
    if a.proxy_cpu == a.load_cpu or max(a.proxy_cpu, a.load_cpu) >= (os.cpu_count() or 1):
        sys.exit("need two distinct existing CPUs for --proxy-cpu and --load-cpu")
    for tool in ("sipp", "taskset"):
        if not shutil.which(tool):
            sys.exit("missing %s" % tool)
    if not a.out:
        a.out = os.path.join(HERE, "..", "results", time.strftime("sip-%Y%m%d-%H%M.jsonl"))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    # The harness itself is load: keep it (and everything it starts without
    # an explicit taskset) off the proxy CPU.
    os.sched_setaffinity(0, {a.load_cpu})
    a.tmp = tempfile.mkdtemp(prefix="sipbench.")
    a.run_id = "%s-%d" % (time.strftime("%Y%m%dT%H%M%S"), os.getpid())
    write_scenarios(a)
    best, holds, allrows = {}, [], []
    try:
        for name in a.systems:
            for mode in a.modes:
                if mode == "register" and name == "sipnatd-relay":
                    continue  # REGISTER has no SDP: same work as sipnatd
                sysd = System(a, name, mode)
                uas = None
                try:
                    sysd.start()
                    uas = start_uas(a, mode, sysd.dir)
                    if mode == "invite" and a.hold_rate > 0:
                        # First, on a fresh process: memory for calls in
                        # flight is not hidden by pages earlier steps touched.
                        h = run_step(a, sysd, mode, a.hold_rate, 5.0, a.hold_long_ms, "hold", uas)
                        emit(a, h)
                        holds.append(h)
                        settle(a)
                    rates = [int(x) for x in (a.rates if mode == "invite" else a.reg_rates).split(",")]
                    _, b = sweep(a, sysd, mode, rates, uas)
                    if b:
                        best[(name, mode)] = b
                except RuntimeError as e:
                    print("%s/%s: %s" % (name, mode, e), file=sys.stderr)
                finally:
                    stop_pid(uas)
                    sysd.stop()
    finally:
        if a.keep:
            print("temporary files kept in %s" % a.tmp, file=sys.stderr)
        else:
            shutil.rmtree(a.tmp, ignore_errors=True)
    try:
        allrows = [json.loads(x) for x in open(a.out)]
    except (OSError, ValueError):
        pass
    print(summary(a, best, holds, [r for r in allrows if r.get("run") == a.run_id]))


if __name__ == "__main__":
    main()
