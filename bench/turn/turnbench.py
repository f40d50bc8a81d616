#!/usr/bin/env python3
"""TURN relay throughput per core: sipnatd next to coturn (not a test).

  turnbench.py --sipnatd BUILD/sipnatd --clients 100,200,400 --msgs 600

For each server (sipnatd, then Debian's turnserver) and each client count,
a fresh server is started alone on --server-cpu, coturn's turnutils_peer
(UDP echo) and turnutils_uclient on --load-cpu.  Each of the N clients
allocates a relay over UDP, binds a channel to the peer and sends --msgs
messages of 172 bytes (G.711 RTP size) every 20 ms; the peer echoes them,
so the server relays two packets per message.

Measured over the steady part of the run (uclient's once-a-second
progress lines give the messages received so far; the first two and last
two samples with traffic are dropped): the echoed-message rate, the
server's CPU time from /proc/PID/task/*/schedstat (exact on-CPU time, where
/proc/stat on a VM is tick-sampled), and relayed packets per CPU-second
("per core").  One JSON object per run goes to --out; a markdown table with
the sipnatd/coturn ratio per client count to stdout and to the same path
with .md instead of .jsonl.

Loopback only (127.0.6.1 server, 127.0.6.2 peer); every process runs in its
own session, bounded in time, and is stopped by PID.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

SERVER_IP = "127.0.6.1"
PEER_IP = "127.0.6.2"
PEER_PORT = 3480
PROGRESS = re.compile(r"^\d+: : start_mclient: msz=\d+, tot_send_msgs=(\d+), tot_recv_msgs=(\d+)",
                      re.M)


def session_pids(leader):
    """Every process in the session of leader (taskset execs the server)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == leader:  # session id
                pids.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return pids


def cpu_ns(pids):
    total = 0
    for pid in pids:
        try:
            for t in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                    total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return total


def stop(p):
    if p and p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def sipnatd_argv(binary, work):
    conf = os.path.join(work, "sipnat.conf")
    with open(conf, "w") as f:
        f.write("[sip]\nlisten = udp:127.0.6.1:5099\n"
                "[relay]\naddress = %s\nports = 40000-49999\nthreads = 1\n"
                "[turn]\nlisten = udp:%s:3478\nrealm = bench.local\nuser = bench:bench\n"
                "allowed_peers = 127.0.0.0/8\nmax_allocations = 20000\nquota_per_user = 20000\n"
                "[control]\nsocket = %s/control.sock\n[log]\nlevel = warn\n"
                % (SERVER_IP, SERVER_IP, work))
    return [binary, "-f", "-c", conf]


def coturn_argv(work):
    return ["turnserver", "-n", "--listening-ip=" + SERVER_IP, "--relay-ip=" + SERVER_IP,
            "--listening-port=3478", "--lt-cred-mech", "--user=bench:bench",
            "--realm=bench.local", "--no-tls", "--no-dtls", "--no-cli",
            "--allow-loopback-peers", "--min-port=40000", "--max-port=49999",
            "--relay-threads=1", "--log-file=stdout", "--simple-log", "--no-software-attribute",
            "--fingerprint", "--user-quota=0", "--total-quota=0"]


def one_run(name, argv, clients, a, work):
    log_dir = os.path.join(work, "%s-%d" % (name, clients))
    os.makedirs(log_dir)
    server = subprocess.Popen(["taskset", "-c", str(a.server_cpu)] + argv,
                              stdout=open(os.path.join(log_dir, "server.log"), "w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    peer = subprocess.Popen(["taskset", "-c", str(a.load_cpu), "turnutils_peer", "-L", PEER_IP,
                             "-p", str(PEER_PORT)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    uc = None
    try:
        time.sleep(1.5)
        if server.poll() is not None:
            sys.exit("%s exited at start; see %s/server.log" % (name, log_dir))
        spids = session_pids(server.pid)
        ulog = os.path.join(log_dir, "uclient.log")
        send_s = a.msgs * 0.020
        uc = subprocess.Popen(["taskset", "-c", str(a.load_cpu), "turnutils_uclient", "-u", "bench",
                               "-w", "bench", "-e", PEER_IP, "-r", str(PEER_PORT), "-m",
                               str(clients), "-n", str(a.msgs), "-l", "172", "-z", "20", "-c",
                               SERVER_IP], stdout=open(ulog, "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
        t0 = time.time()
        samples = []  # (t, received so far, server cpu ns)
        deadline = t0 + send_s * 4 + clients / 5.0 + 60
        while uc.poll() is None and time.time() < deadline:
            got = PROGRESS.findall(open(ulog).read())
            samples.append((time.time(), int(got[-1][1]) if got else 0, cpu_ns(spids)))
            time.sleep(0.5)
        stop(uc)
        text = open(ulog).read()
        prog = PROGRESS.findall(text)
        res = {"server": name, "clients": clients, "msgs_per_client": a.msgs,
               "sent": int(prog[-1][0]) if prog else 0, "received": int(prog[-1][1]) if prog else 0,
               "wall_s": round(time.time() - t0, 1), "uclient_rc": uc.returncode,
               "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
        live = [s for s in samples if s[1] > 0]
        if len(live) >= 6:
            s0, s1 = live[2], live[-3]
            dt = s1[0] - s0[0]
            if dt > 1 and s1[1] > s0[1]:
                rate = (s1[1] - s0[1]) / dt
                cpu = (s1[2] - s0[2]) / 1e9 / dt
                res.update({"window_s": round(dt, 1), "echoed_msg_per_s": round(rate),
                            "relayed_pps": round(2 * rate), "server_cpu": round(cpu, 3),
                            "pps_per_core": round(2 * rate / cpu) if cpu > 0.002 else None})
        return res
    finally:
        stop(uc)
        stop(peer)
        stop(server)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sipnatd", required=True)
    ap.add_argument("--clients", default="100,200,400")
    ap.add_argument("--msgs", type=int, default=600)
    ap.add_argument("--servers", default="sipnatd,coturn")
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.msgs * 0.020 > 60:
        sys.exit("--msgs: at most 3000 (60 s of sending)")
    work = tempfile.mkdtemp(prefix="sipnat-turnbench.")
    rows = []
    for n in [int(x) for x in a.clients.split(",")]:
        for name in a.servers.split(","):
            argv = sipnatd_argv(a.sipnatd, work) if name == "sipnatd" else coturn_argv(work)
            r = one_run(name, argv, n, a, work)
            rows.append(r)
            print(json.dumps(r), flush=True)
            with open(a.out, "a") as f:
                f.write(json.dumps(r) + "\n")
            time.sleep(1)
    md = ["| clients | server | relayed pps | server CPU | pps per core | ratio sipnatd/coturn |",
          "|---|---|---|---|---|---|"]
    for n in sorted({r["clients"] for r in rows}):
        by = {r["server"]: r for r in rows if r["clients"] == n}
        ours, theirs = by.get("sipnatd", {}), by.get("coturn", {})
        ratio = ""
        if ours.get("pps_per_core") and theirs.get("pps_per_core"):
            ratio = "%.2f" % (ours["pps_per_core"] / theirs["pps_per_core"])
        for name, r in by.items():
            md.append("| %d | %s | %s | %s | %s | %s |" % (n, name, r.get("relayed_pps", "-"),
                                                         r.get("server_cpu", "-"),
                                                         r.get("pps_per_core", "-"),
                                                         ratio if name == "sipnatd" else ""))
    # the same table next to the JSON lines, for the record
    md_path = re.sub(r"\.jsonl$", "", a.out) + ".md"
    with open(md_path, "w") as f:
        f.write("# TURN relayed packets per core, %s\n\n" % time.strftime("%Y-%m-%d %H:%M"))
        f.write("%d messages per client, server on CPU %d, load on CPU %d; "
                "pps per core = relayed packets per second of server CPU.\n\n"
                % (a.msgs, a.server_cpu, a.load_cpu))
        f.write("\n".join(md) + "\n")
    print("\n" + "\n".join(md))
    print("\ntable in %s, logs in %s" % (md_path, work))


if __name__ == "__main__":
    main()
