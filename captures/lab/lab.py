#!/usr/bin/python3
"""smtp-over-http capture lab.  Run through make-captures.sh (as root).

Topology (documentation addresses, plus RFC 2544's benchmarking range for
the second proxy host: the three IPv4 documentation /24s are already used,
one per link, and none is split):

   soh-a (clients)          soh-p (proxy host P, ONE interface p0)
   a0 192.0.2.10, .20       p0 203.0.113.1, 2001:db8:3::1
      2001:db8:a::10           tinyproxy :8888 (open), :8080 (ConnectPort 443),
          |                    :6588 (open), :8890 (Upstream http Q:8888);
          |                    squid :3128 (open), :3129 (default SSL_ports
          |                    rule), :8240 (open); a second squid with
          |                    keep-alive: :3132 (open), :8088 (basic auth);
          |                    microsocks :1080, :9050;
          |                    danted :1081 (SOCKS4/5); ssh -D :1082 (SOCKS4a/5,
          |                    via an sshd on P's loopback 127.0.0.1:2222)
          |                           |
          +-------- soh-r (router) ---+---- soh-q (second proxy host Q)
                         |                 q0 198.18.0.1, 2001:db8:4::1
                         |                    tinyproxy :8888, microsocks :1080
   soh-s (servers) s0 198.51.100.25 MTA (smtp-sink :25 :587 :2525 :8025),
   198.51.100.26 (nothing listens), .27 Postfix smtpd :25 (stand-alone mode),
   .53 dnsmasq, .80 web (http :80, TLS :443), 2001:db8::25 MTA :25

Router side of each link: 192.0.2.1, 203.0.113.254, 198.18.0.254,
198.51.100.1 (and ::1 / ::254 in the IPv6 prefixes).

Captures are taken on p0 inside soh-p (the proxy's uplink) unless a case says
otherwise, so both legs and the proxy's DNS lookups are in them.  `chain` is
captured in soh-r with `tcpdump -i any -Q in`: every packet between two hosts
once, as it enters the router, on all links (client -> P, P -> Q, Q -> MTA).
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time

LAB = os.path.dirname(os.path.abspath(__file__))
CAPDIR = os.path.dirname(LAB)
sys.path.insert(0, LAB)
sys.dont_write_bytecode = True
import soh_labels  # noqa: E402

WORK = os.environ.get("SOH_LAB_WORK")
MADE_BY = "captures/lab/make-captures.sh"
PY = "/usr/bin/python3"

A1, A2, A6 = "192.0.2.10", "192.0.2.20", "2001:db8:a::10"
P, P6 = "203.0.113.1", "2001:db8:3::1"
Q, Q6 = "198.18.0.1", "2001:db8:4::1"
MX, MX_DEAD, DNS, WEB, MX6 = "198.51.100.25", "198.51.100.26", "198.51.100.53", "198.51.100.80", "2001:db8::25"
MX_PF = "198.51.100.27"
# accounts of the second squid's basic authentication (port 8088)
SQUID_USERS = (("sales", "Summer2024"), ("alice", "wonderland7"))

PIDS = []
DAEMONS = []
MADE_DIRS = []


def log(*a):
    print("[lab]", *a, flush=True)


def sh(cmd, check=True, timeout=30):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("command failed: %s\n%s%s" % (cmd, r.stdout, r.stderr))
    return r


HOSTNAMES = {"r": "router.example", "a": "client.example", "p": "proxy.example", "q": "proxy2.example",
             "s": "mx.victim.example"}
NAMESPACES = ("r", "a", "p", "q", "s")


def nsx(ns):
    """Run inside namespace soh-<ns>, in a UTS namespace of its own so that
    programs that use the host name (swaks's Message-Id, HELO defaults) see
    the lab's name for that host.  Every step execs, so the pid is kept."""
    return ["ip", "netns", "exec", "soh-" + ns, "unshare", "--uts", "sh", "-c",
            'hostname "$0" && exec "$@"', HOSTNAMES[ns]]


def record_pid(pid):
    PIDS.append(pid)
    with open(os.path.join(WORK, "pids"), "a") as f:
        f.write("%d\n" % pid)


def start(ns, cmd, name):
    """Start a long-running program inside a namespace; `ip netns exec`
    execs the program, so the Popen pid is the program's pid."""
    out = open(os.path.join(WORK, "log", name + ".log"), "w")
    p = subprocess.Popen(nsx(ns) + cmd, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    record_pid(p.pid)
    DAEMONS.append((name, p))
    return p


def stop(p, sig=signal.SIGTERM, wait=5):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def wait_port(ns, host, port, tries=60):
    fam = "-6" if ":" in host else "-4"
    for _ in range(tries):
        r = subprocess.run(nsx(ns) + ["nc", fam, "-z", "-w", "1", host, str(port)],
                           capture_output=True, timeout=5)
        if r.returncode == 0:
            return
        time.sleep(0.25)
    raise RuntimeError("nothing listens on %s:%d in %s" % (host, port, ns))


def version(pkg):
    v = sh(["dpkg-query", "-W", "-f", "${Version}", pkg]).stdout
    up = v.split(":")[-1].rsplit("-", 1)[0].split("+")[0]
    return up, v


VERS = {}


def software(name):
    pkgs = {"tinyproxy": "tinyproxy", "squid": "squid", "smtp-sink": "postfix",
            "microsocks": "microsocks", "dnsmasq": "dnsmasq-base", "swaks": "swaks",
            "socat": "socat", "curl": "curl", "openssl": "openssl", "ncat": "ncat",
            "tcpdump": "tcpdump", "python3": "python3", "danted": "dante-server",
            "nc": "netcat-openbsd", "proxychains4": "proxychains4", "smtpd": "postfix",
            "ssh": "openssh-client", "sshd": "openssh-server", "stunnel": "stunnel4"}
    up, full = version(pkgs[name])
    return "%s %s" % (name, up), "%s %s (Debian package %s %s)" % (name, up, pkgs[name], full)


# ---------------------------------------------------------------- topology

def topology():
    for ns in NAMESPACES:
        sh(["ip", "netns", "add", "soh-" + ns])
        sh(nsx(ns) + ["ip", "link", "set", "lo", "up"])
        for k in ("net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0",
                  "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"):
            sh(nsx(ns) + ["sysctl", "-q", "-w", k])
    sh(nsx("r") + ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    sh(nsx("r") + ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
    links = {
        "a": (["192.0.2.1/24", "2001:db8:a::1/64"], ["%s/24" % A1, "%s/24" % A2, "%s/64" % A6], "192.0.2.1", "2001:db8:a::1"),
        "p": (["203.0.113.254/24", "2001:db8:3::254/64"], ["%s/24" % P, "%s/64" % P6], "203.0.113.254", "2001:db8:3::254"),
        "q": (["198.18.0.254/24", "2001:db8:4::254/64"], ["%s/24" % Q, "%s/64" % Q6], "198.18.0.254", "2001:db8:4::254"),
        "s": (["198.51.100.1/24", "2001:db8::1/64"], ["%s/24" % MX, "%s/24" % MX_DEAD, "%s/24" % DNS, "%s/24" % WEB,
                                                    "%s/24" % MX_PF, "%s/64" % MX6],
              "198.51.100.1", "2001:db8::1"),
    }
    for ns, (raddr, addrs, gw4, gw6) in links.items():
        sh(["ip", "link", "add", "r" + ns, "netns", "soh-r", "type", "veth",
            "peer", "name", ns + "0", "netns", "soh-" + ns])
        for a in raddr:
            sh(nsx("r") + ["ip", "addr", "add", a, "dev", "r" + ns] + (["nodad"] if ":" in a else []))
        sh(nsx("r") + ["ip", "link", "set", "r" + ns, "up"])
        for a in addrs:
            sh(nsx(ns) + ["ip", "addr", "add", a, "dev", ns + "0"] + (["nodad"] if ":" in a else []))
        sh(nsx(ns) + ["ip", "link", "set", ns + "0", "up"])
        sh(nsx(ns) + ["ip", "route", "add", "default", "via", gw4])
        sh(nsx(ns) + ["ip", "-6", "route", "add", "default", "via", gw6])
    # every host resolves through the lab's dnsmasq and knows its own name
    # (ip netns exec bind-mounts /etc/netns/<ns>/* over /etc/*)
    own = {"r": "192.0.2.1", "a": A1, "p": P, "q": Q, "s": MX}
    for ns in NAMESPACES:
        d = "/etc/netns/soh-" + ns
        os.makedirs(d, exist_ok=True)
        with open(d + "/resolv.conf", "w") as f:
            f.write("nameserver %s\noptions timeout:2 attempts:1\n" % DNS)
        with open(d + "/hosts", "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n%s %s\n" % (own[ns], HOSTNAMES[ns]))


def teardown():
    for name, p in reversed(DAEMONS):
        try:
            stop(p)
        except Exception as e:  # keep tearing down
            log("stop", name, e)
    for ns in ("a", "p", "q", "s", "r"):
        subprocess.run(["ip", "netns", "del", "soh-" + ns], capture_output=True)
    for ns in NAMESPACES:
        shutil.rmtree("/etc/netns/soh-" + ns, ignore_errors=True)
    for d in MADE_DIRS:
        shutil.rmtree(d, ignore_errors=True)
    try:
        os.rmdir("/etc/netns")
    except OSError:
        pass


# ---------------------------------------------------------------- services

def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def services():
    os.makedirs(os.path.join(WORK, "log"), exist_ok=True)
    run = os.path.join(WORK, "run")
    os.makedirs(run, exist_ok=True)
    os.chmod(run, 0o1777)
    # MTAs: postfix's smtp-sink
    for port in (25, 587, 2525, 8025):
        start("s", ["smtp-sink", "-u", "nobody", "-h", "mx.victim.example", "%s:%d" % (MX, port), "100"],
              "smtp-sink-%d" % port)
    start("s", ["smtp-sink", "-6", "-u", "nobody", "-h", "mx6.victim.example", "[%s]:25" % MX6, "100"],
          "smtp-sink-v6")
    # web server: plain HTTP and TLS
    www = os.path.join(WORK, "www")
    os.makedirs(www, exist_ok=True)
    write(os.path.join(www, "index.html"), "<html><body>welcome</body></html>\n")
    write(os.path.join(www, "news.html"), "<html><body>" + "news " * 200 + "</body></html>\n")
    start("s", [PY, "-m", "http.server", "--bind", WEB, "--directory", www, "80"], "http")
    key, crt = os.path.join(WORK, "web.key"), os.path.join(WORK, "web.crt")
    sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "30", "-subj", "/CN=www.example", "-keyout", key, "-out", crt])
    start("s", ["openssl", "s_server", "-quiet", "-accept", "%s:443" % WEB, "-cert", crt, "-key", key,
                "-www"], "tls")
    # DNS
    start("s", ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--listen-address=%s" % DNS, "--bind-interfaces", "--user=nobody", "--group=nogroup",
                "--pid-file=%s/dnsmasq.pid" % run, "--log-queries",
                "--address=/mx.victim.example/%s" % MX, "--address=/mx6.victim.example/%s" % MX6,
                "--address=/www.example/%s" % WEB, "--local=/example/", "--local=/in-addr.arpa/",
                "--local=/ip6.arpa/", "--address=/dead.victim.example/%s" % MX_DEAD],
          "dnsmasq")
    # tinyproxy: three instances, one config each
    for port, extra in ((8888, ""), (6588, ""), (8080, "ConnectPort 443\nConnectPort 563\n")):
        conf = os.path.join(WORK, "tinyproxy-%d.conf" % port)
        write(conf, ("User nobody\nGroup nogroup\nPort %d\nTimeout 60\n"
                     "LogFile \"%s/tinyproxy-%d.log\"\nLogLevel Info\nPidFile \"%s/tinyproxy-%d.pid\"\n"
                     "MaxClients 200\n%s") % (port, run, port, run, port, extra))
        start("p", ["tinyproxy", "-d", "-c", conf], "tinyproxy-%d" % port)
    # squid: careless open proxy on 3128 and 8240, default-like rules on 3129
    sq = os.path.join(WORK, "squid")
    os.makedirs(sq, exist_ok=True)
    shutil.chown(sq, "proxy", "proxy")
    conf = os.path.join(WORK, "squid.conf")
    write(conf, """http_port 3128
http_port 3129 name=strict
http_port 8240
acl strict myportname strict
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny strict CONNECT !SSL_ports
http_access allow all
cache deny all
cache_mem 8 MB
cache_effective_user proxy
pid_filename {sq}/squid.pid
access_log stdio:{sq}/access.log
cache_log {sq}/cache.log
cache_store_log none
coredump_dir {sq}
visible_hostname proxy.example
dns_nameservers {dns}
server_persistent_connections off
client_persistent_connections off
shutdown_lifetime 1 seconds
""".format(sq=sq, dns=DNS))
    start("p", ["squid", "-N", "-f", conf], "squid")
    # a second squid (own service name, configuration, pid file and logs)
    # that keeps client connections open (HTTP keep-alive): open on 3132,
    # basic authentication (basic_ncsa_auth, a password file made here) on
    # 8088.  client_persistent_connections is global, so the careless squid
    # above keeps its `off` and its captures do not change.
    sq2 = os.path.join(WORK, "squid-ka")
    os.makedirs(sq2, exist_ok=True)
    shutil.chown(sq2, "proxy", "proxy")
    passwd = os.path.join(WORK, "squid-passwd")
    write(passwd, "".join("%s:%s\n" % (u, sh(["openssl", "passwd", "-apr1", pw]).stdout.strip())
                          for u, pw in SQUID_USERS))
    conf2 = os.path.join(WORK, "squid-ka.conf")
    write(conf2, """http_port 3132 name=keepalive
http_port 8088 name=auth
auth_param basic program /usr/lib/squid/basic_ncsa_auth {passwd}
auth_param basic children 2 startup=1 idle=1
auth_param basic realm proxy.example
acl auth myportname auth
acl authenticated proxy_auth REQUIRED
http_access allow auth authenticated
http_access deny auth
http_access allow all
cache deny all
cache_mem 8 MB
cache_effective_user proxy
pid_filename {sq}/squid.pid
access_log stdio:{sq}/access.log
cache_log {sq}/cache.log
cache_store_log none
coredump_dir {sq}
visible_hostname proxy.example
dns_nameservers {dns}
client_persistent_connections on
server_persistent_connections off
shutdown_lifetime 1 seconds
""".format(sq=sq2, dns=DNS, passwd=passwd))
    start("p", ["squid", "-N", "-n", "sohka", "-f", conf2], "squid-ka")
    # An HTTPS proxy: stunnel takes TLS on 8443 and hands the plain HTTP to
    # tinyproxy on the proxy host's loopback (not on the uplink), as a
    # TLS-terminating front end does; the relay leg leaves from P.
    pkey, pcrt = os.path.join(WORK, "proxy.key"), os.path.join(WORK, "proxy.crt")
    sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "30", "-subj", "/CN=proxy.example", "-keyout", pkey, "-out", pcrt])
    sconf = os.path.join(WORK, "stunnel.conf")
    write(sconf, """foreground = yes
pid =
[https-proxy]
accept = {p}:8443
connect = 127.0.0.1:8888
cert = {crt}
key = {key}
""".format(p=P, crt=pcrt, key=pkey))
    start("p", ["stunnel4", sconf], "stunnel")
    start("p", ["microsocks", "-i", "0.0.0.0", "-p", "1080"], "microsocks")
    dconf = os.path.join(WORK, "danted.conf")
    write(dconf, """logoutput: {run}/danted.log
internal: {p} port = 1081
external: {p}
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}
socks pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}
""".format(run=run, p=P))
    start("p", ["danted", "-f", dconf, "-p", os.path.join(run, "danted.pid"), "-N", "1"], "danted")
    # second proxy host Q: tinyproxy and microsocks, both open
    conf = os.path.join(WORK, "tinyproxy-q-8888.conf")
    write(conf, ("User nobody\nGroup nogroup\nPort 8888\nTimeout 60\n"
                 "LogFile \"%s/tinyproxy-q-8888.log\"\nLogLevel Info\nPidFile \"%s/tinyproxy-q-8888.pid\"\n"
                 "MaxClients 50\n") % (run, run))
    start("q", ["tinyproxy", "-d", "-c", conf], "tinyproxy-q-8888")
    start("q", ["microsocks", "-i", "0.0.0.0", "-p", "1080"], "microsocks-q")
    # tinyproxy on P that forwards everything to Q (config-driven chain)
    conf = os.path.join(WORK, "tinyproxy-8890.conf")
    write(conf, ("User nobody\nGroup nogroup\nPort 8890\nTimeout 60\n"
                 "LogFile \"%s/tinyproxy-8890.log\"\nLogLevel Info\nPidFile \"%s/tinyproxy-8890.pid\"\n"
                 "MaxClients 50\nUpstream http %s:8888\n") % (run, run, Q))
    start("p", ["tinyproxy", "-d", "-c", conf], "tinyproxy-8890")
    # SOCKS5 on a Tor-like port
    start("p", ["microsocks", "-i", "0.0.0.0", "-p", "9050"], "microsocks-9050")
    # SOCKS4a and SOCKS5: OpenSSH dynamic forwarding (ssh -D) on P, through
    # an sshd on P's loopback (not on p0, so not in the captures); throwaway
    # keys made here, login as nobody, no shell (-N)
    ssh = os.path.join(WORK, "ssh")
    os.makedirs(ssh)
    for k in ("host", "user"):
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "soh-lab-%s" % k, "-f", os.path.join(ssh, k)])
    shutil.copy(os.path.join(ssh, "user.pub"), os.path.join(ssh, "authorized_keys"))
    os.chmod(os.path.join(ssh, "authorized_keys"), 0o644)
    write(os.path.join(ssh, "sshd_config"), """ListenAddress 127.0.0.1:2222
HostKey {d}/host
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers nobody
AllowTcpForwarding yes
PermitTTY no
X11Forwarding no
PidFile {d}/sshd.pid
LogLevel VERBOSE
""".format(d=ssh))
    if not os.path.isdir("/run/sshd"):     # privilege separation directory
        os.makedirs("/run/sshd", mode=0o755)
        MADE_DIRS.append("/run/sshd")
    start("p", ["/usr/sbin/sshd", "-D", "-e", "-f", os.path.join(ssh, "sshd_config")], "sshd")
    wait_port("p", "127.0.0.1", 2222)
    start("p", ["ssh", "-N", "-F", "/dev/null", "-D", "%s:1082" % P, "-p", "2222", "-i", os.path.join(ssh, "user"),
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=0", "nobody@127.0.0.1"], "ssh-D")
    # a real Postfix smtpd (stand-alone mode, as `sendmail -bs` runs it) on
    # its own address, one process per connection through socat, as nobody;
    # its private configuration has a queue directory without a maildrop, so
    # it could never queue mail (the case never gets that far)
    pf = os.path.join(WORK, "postfix")
    os.makedirs(os.path.join(pf, "queue"))
    write(os.path.join(pf, "main.cf"), ("compatibility_level = 3.6\nmyhostname = mx2.victim.example\n"
                                        "mydestination =\nqueue_directory = %s/queue\n"
                                        "smtpd_banner = $myhostname ESMTP $mail_name\n") % pf)
    start("s", ["env", "MAIL_CONFIG=" + pf, "socat", "TCP-LISTEN:25,bind=%s,reuseaddr,fork" % MX_PF,
                "EXEC:/usr/lib/postfix/sbin/smtpd -S,su=nobody"], "postfix-smtpd")
    for host, port, ns in ((MX, 25, "s"), (MX, 587, "s"), (MX, 2525, "s"), (MX, 8025, "s"),
                           (MX6, 25, "s"), (WEB, 80, "s"), (WEB, 443, "s"), (MX_PF, 25, "s"),
                           (P, 8888, "p"), (P, 6588, "p"), (P, 8080, "p"), (P, 3128, "p"),
                           (P, 3129, "p"), (P, 8240, "p"), (P, 3132, "p"), (P, 8088, "p"),
                           (P, 1080, "p"), (P, 1081, "p"),
                           (P, 8890, "p"), (P, 9050, "p"), (P, 1082, "p"), (Q, 8888, "q"), (Q, 1080, "q")):
        wait_port(ns, host, port)
    time.sleep(1)


# ---------------------------------------------------------------- cases

class Case:
    def __init__(self, name, purpose, capture_point="proxy uplink", legs=("tunnel", "relay")):
        self.name = name
        self.purpose = purpose
        self.capture_point = capture_point
        self.legs = list(legs)
        self.incidents = []
        self.benign = []
        self.commands = []
        self.software = set()
        self.observations = []
        self.dns_names = []
        self.proxied_benign = 0
        self.proxy_addresses = [P, P6]

    def add_sw(self, *names):
        for n in names:
            self.software.add(software(n)[1])

    def incident(self, **kw):
        inc = {
            "id": "i%d" % (len(self.incidents) + 1),
            "method": "CONNECT", "client": None, "proxy": None, "request_index": 0,
            "proxy_software": None, "target": None, "target_host": None, "target_port": None, "target_resolved": None,
            "status": "established", "status_code": 200, "smtp": True, "relay": None,
            "helo": None, "mail_from": [], "rcpt_to": [], "messages": 0,
        }
        inc.update(kw)
        inc["target_port"] = int(inc["target_port"])
        self.incidents.append(inc)
        return inc

    def add_benign(self, kind, client, server, note=None, via_proxy=False):
        b = {"kind": kind, "client": client, "server": server}
        if note:
            b["note"] = note
        self.benign.append(b)
        if via_proxy:
            self.proxied_benign += 1


def ep(ip, port):
    return soh_labels.ep(ip, port)


def cmdline(argv):
    out = []
    for a in argv:
        a = a.replace(WORK, "$WORK").replace(LAB, "captures/lab")
        out.append("'%s'" % a if (" " in a or "|" in a or "*" in a or "$" in a or ";" in a) else a)
    return " ".join(out)


def run_client(case, ns, argv, timeout=30, check=True):
    case.commands.append(cmdline(argv))
    r = subprocess.run(nsx(ns) + ["timeout", str(timeout)] + argv, capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    with open(os.path.join(WORK, "log", "clients.log"), "a") as f:
        f.write("$ %s\nrc=%d\n%s%s\n" % (cmdline(argv), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    if check and r.returncode != 0:
        raise RuntimeError("client failed (rc %d): %s\n%s%s" % (r.returncode, cmdline(argv), r.stdout[-2000:], r.stderr[-2000:]))
    return r


def spawn_client(case, ns, argv, timeout=60):
    case.commands.append(cmdline(argv) + " &")
    p = subprocess.Popen(nsx(ns) + ["timeout", str(timeout)] + argv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    record_pid(p.pid)
    return p


MSGFILE = None


def msgfile():
    global MSGFILE
    if MSGFILE is None:
        MSGFILE = os.path.join(WORK, "message.txt")
        write(MSGFILE, "From: <sales@spam.example>\r\nTo: <list@victim.example>\r\n"
                       "Subject: limited offer\r\n\r\nBuy cheap watches now.\r\n")
    return MSGFILE


PROXY_SW = {}


def proxy_sw(name):
    if name not in PROXY_SW:
        PROXY_SW[name] = software(name)[0]
    return PROXY_SW[name]


def swaks_argv(pipe, helo, mfrom, rcpts):
    return ["swaks", "--pipe", pipe, "--helo", helo, "--from", mfrom, "--to", ",".join(rcpts),
            "--header", "Subject: limited offer", "--body", "Buy cheap watches now.",
            "--timeout", "10"]


def swaks_socat(case, proxy_name, pport, thost, tport, sport, helo, mfrom, rcpts, cip=A1,
                resolved=None, spawn=False, pip=P, barrier=None):
    """swaks speaking SMTP through socat's PROXY address (HTTP CONNECT).
    With a barrier file, the tunnel is opened only once the file exists
    (bounded wait), so many clients can start at the same moment."""
    target = "%s:%d" % (thost, tport)
    pipe = "socat - PROXY:%s:%s,proxyport=%d,bind=%s:%d" % (pip, target, pport, cip, sport)
    if barrier:
        pipe = "%s; exec %s" % (wait_for(barrier), pipe)
    argv = swaks_argv(pipe, helo, mfrom, rcpts)
    case.add_sw("swaks", "socat", proxy_name)
    inc = case.incident(method="CONNECT", client=ep(cip, sport), proxy=ep(pip, pport),
                        proxy_software=proxy_sw(proxy_name), target=target, target_host=thost,
                        target_port=tport, target_resolved=resolved or thost, helo=helo,
                        mail_from=[mfrom], rcpt_to=list(rcpts), messages=1, relay_expected=True,
                        client_software="swaks via socat PROXY")
    if spawn:
        return inc, spawn_client(case, "a", argv)
    run_client(case, "a", argv)
    return inc


def curl_smtp(case, proxy_name, proxy_url, pep, thost, tport, sport, helo, mfrom, rcpts, cip=A1,
              method="CONNECT", resolved=None, target=None, status_code=200, pre=(), opts=()):
    """pre: words before curl (an env setting); opts: more curl options."""
    url_host = "[%s]" % thost if ":" in thost else thost
    argv = list(pre) + ["curl"] + list(opts) + ["-sS", "--max-time", "20", "--interface", cip, "--local-port", str(sport),
            "-x", proxy_url] + (["-p"] if method == "CONNECT" else []) + [
            "smtp://%s:%d/%s" % (url_host, tport, helo), "--mail-from", mfrom]
    for r in rcpts:
        argv += ["--mail-rcpt", r]
    argv += ["-T", msgfile()]
    case.add_sw("curl", proxy_name)
    run_client(case, "a", argv)
    return case.incident(method=method, client=ep(cip, sport), proxy=pep,
                         proxy_software=proxy_sw(proxy_name),
                         target=target or "%s:%d" % (url_host, tport), target_host=thost,
                         target_port=tport, target_resolved=resolved or thost, helo=helo,
                         status_code=status_code, mail_from=[mfrom], rcpt_to=list(rcpts),
                         messages=1, relay_expected=True, client_software="curl (SMTP over %s proxy)" % method)


def wait_for(path):
    return "i=0; while [ ! -e %s ] && [ $i -lt 300 ]; do sleep 0.02; i=$((i+1)); done" % path


def curl_get(case, proxy_url, pep, url, sport, cip=A2, kind="proxied-get", spawn=False, barrier=None,
             pre=(), opts=()):
    argv = list(pre) + ["curl"] + list(opts) + ["-sS", "-k", "-o", "/dev/null", "--max-time", "15", "--interface", cip,
            "--local-port", str(sport), "-x", proxy_url, url]
    if barrier:
        argv = ["sh", "-c", wait_for(barrier) + '; exec "$@"', "sh"] + argv
    case.add_sw("curl")
    case.add_benign(kind, ep(cip, sport), pep, note=("GET " if kind == "proxied-get" else "CONNECT + TLS GET ") + url,
                    via_proxy=True)
    if spawn:
        return spawn_client(case, "a", argv)
    run_client(case, "a", argv)


def raw(case, sport, pep, request, smtp=None, cip=A1, read_all=False, timeout=8):
    """request: the request bytes (escaped, \\r\\n), or a list of them to send
    one after another on the same connection (keep-alive)."""
    argv = [PY, os.path.join(LAB, "rawclient.py"), "--bind", ep(cip, sport), "--connect", pep]
    for r in (request if isinstance(request, list) else [request]):
        argv += ["--request", r]
    argv += ["--timeout", str(timeout)]
    if smtp:
        argv += ["--smtp", smtp[0], smtp[1], ",".join(smtp[2])]
    if read_all:
        argv.append("--read-all")
    case.add_sw("python3")
    r = run_client(case, "a", argv, timeout=timeout * 4 + 10)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return res


class Capture:
    def __init__(self, points):
        """points: list of (ns, iface, file) or (ns, iface, file, direction);
        direction `in` (tcpdump -Q in) on the router's `any` interface
        records every forwarded packet once, as it enters the router."""
        self.points = [tuple(p) + (None,) * (4 - len(p)) for p in points]
        self.procs = []

    def __enter__(self):
        for ns, iface, path, direction in self.points:
            if os.path.exists(path):
                os.unlink(path)
            err = os.path.join(WORK, "log", "tcpdump-%s.log" % os.path.basename(path))
            p = subprocess.Popen(nsx(ns) + ["tcpdump", "-i", iface] + (["-Q", direction] if direction else []) +
                                 ["-s", "0", "-U", "-n", "-Z", "root", "-w", path, "tcp or udp port 53"],
                                 stdout=subprocess.DEVNULL, stderr=open(err, "w"))
            record_pid(p.pid)
            self.procs.append((p, err))
        for p, err in self.procs:
            for _ in range(50):
                if "listening on" in open(err).read():
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("tcpdump did not start: " + open(err).read())
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        time.sleep(1.5)      # let FIN/ACK exchanges finish
        for p, _ in self.procs:
            stop(p, signal.SIGINT)
        for _, _, path, _ in self.points:
            os.chmod(path, 0o644)
        return False


def finish(case, pcap_name=None, meta_extra=None):
    """Discover relay endpoints, check, write labels and notes."""
    pcap_name = pcap_name or case.name + ".pcap"
    pcap = os.path.join(CAPDIR, pcap_name)
    labels = {
        "case": case.name, "capture": pcap_name, "made_by": MADE_BY,
        "capture_point": case.capture_point, "legs_visible": case.legs,
        "proxy_addresses": case.proxy_addresses,
        "incidents": case.incidents, "benign": case.benign,
    }
    if case.dns_names:
        labels["dns_names"] = case.dns_names
    streams, _ = soh_labels.load(pcap)
    soh_labels.discover_relays(labels, streams)
    for inc in case.incidents:
        r = inc["relay"]
        s = soh_labels.find_stream(streams, r["client"], r["server"]) if r else None
        if inc["status"] == "refused" and s and s.s2c:
            # An error answer after the proxy connected and the mail server
            # spoke on the relay leg (tinyproxy's 503 to an absolute-URI
            # POST): not a refusal.  The client's code stays in status_code.
            inc["status"] = "established"
        if inc["messages"] is None:
            # the client cannot tell (absolute-URI relay): count what the MTA
            # accepted on the relay leg
            r = inc["relay"]
            s = soh_labels.find_stream(streams, r["client"], r["server"]) if r else None
            inc["messages"] = soh_labels.accepted_messages(s.s2c) if s else 0
    if "relay" in case.legs and case.capture_point == "proxy uplink":
        br = soh_labels.discover_benign_relays(labels, streams)
        if len(br) != case.proxied_benign:
            raise soh_labels.CheckError("%s: %d proxy->origin connections for %d proxied benign requests: %s" % (
                case.name, len(br), case.proxied_benign, br))
        labels["benign_relays"] = br
    streams, dnsrows, facts, errors = soh_labels.check(labels, pcap)
    if errors:
        raise soh_labels.CheckError("\n".join(errors))
    with open(os.path.join(CAPDIR, case.name + ".labels.json"), "w") as f:
        json.dump(labels, f, indent=1)
        f.write("\n")
    meta = {"purpose": case.purpose, "software": sorted(case.software | {software("tcpdump")[1]}),
            "commands": case.commands, "observations": case.observations}
    soh_labels.write_md(labels, meta, streams, dnsrows, facts, os.path.join(CAPDIR, case.name + ".md"))
    log("%s: ok, %d incidents, %d benign, %d streams" % (case.name, len(case.incidents), len(case.benign), len(streams)))
    return facts


def uplink(case):
    return Capture([("p", "p0", os.path.join(CAPDIR, case.name + ".pcap"))])


# --- 1
def benign_only():
    c = Case("benign_only", "Only legitimate traffic: HTTPS tunnels through CONNECT to :443 on "
             "tinyproxy and squid, proxied HTTP GETs, and a direct SMTP session from the proxy "
             "host itself to the MTA.  Nothing here is an incident; a detector must stay silent.")
    with uplink(c):
        curl_get(c, "http://%s:8888" % P, ep(P, 8888), "https://%s/" % WEB, 40101, kind="https-tunnel")
        curl_get(c, "http://%s:3128" % P, ep(P, 3128), "https://%s/" % WEB, 40102, kind="https-tunnel")
        curl_get(c, "http://%s:8888" % P, ep(P, 8888), "http://%s/index.html" % WEB, 40103)
        curl_get(c, "http://%s:3128" % P, ep(P, 3128), "http://%s/news.html" % WEB, 40104)
        argv = ["swaks", "--server", MX, "--port", "25", "--local-interface", P, "--local-port", "40105",
                "--helo", "proxy.example", "--from", "root@proxy.example", "--to", "postmaster@victim.example",
                "--header", "Subject: cron report", "--body", "nightly job done", "--timeout", "10"]
        c.add_sw("swaks")
        run_client(c, "p", argv)
        c.add_benign("direct-smtp", ep(P, 40105), ep(MX, 25), note="legitimate mail from the proxy host")
        # openssl s_client through CONNECT; it cannot choose its source
        # port, so its endpoint is taken from the capture below
        c.add_sw("openssl")
        c.proxied_benign += 1
        c.commands.append("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | openssl s_client -quiet -ign_eof "
                          "-proxy %s:8888 -connect %s:443" % (P, WEB))
        r = subprocess.run(nsx("a") + ["timeout", "15", "openssl", "s_client", "-quiet", "-ign_eof",
                                        "-proxy", "%s:8888" % P, "-connect", "%s:443" % WEB],
                           input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True)
        if r.returncode != 0 or b"HTTP/1.0 200" not in r.stdout:
            raise RuntimeError("openssl s_client failed: %r" % r.stderr[-500:])
    streams, _ = soh_labels.load(os.path.join(CAPDIR, c.name + ".pcap"))
    known = {b["client"] for b in c.benign}
    found = [x for x in streams.values() if x.server == ep(P, 8888) and x.client not in known
             and x.c2s.startswith(b"CONNECT %s:443 " % WEB.encode())]
    if len(found) != 1:
        raise RuntimeError("benign_only: %d openssl s_client tunnels in the capture" % len(found))
    c.add_benign("https-tunnel", found[0].client, ep(P, 8888),
                 note="openssl s_client -proxy: CONNECT %s:443 + TLS GET /; client port taken from the capture" % WEB)
    finish(c)


# --- 2
def connect_ip_tinyproxy():
    c = Case("connect_ip_tinyproxy", "One spam tunnel: the attacker sends `CONNECT 198.51.100.25:25` "
             "to tinyproxy (an open proxy), gets 200 and sends one message with two recipients "
             "through the tunnel.")
    with uplink(c):
        swaks_socat(c, "tinyproxy", 8888, MX, 25, 40201, "bot.example", "a@spam.example",
                    ["v1@victim.example", "v2@victim.example"])
    finish(c)


# --- 3
def connect_ip_squid():
    c = Case("connect_ip_squid", "One spam tunnel through squid on 3128 (careless config: "
             "CONNECT allowed to any port), plus the same through squid with curl as the SMTP client.")
    with uplink(c):
        swaks_socat(c, "squid", 3128, MX, 25, 40301, "bot.example", "b@spam.example",
                    ["v1@victim.example", "v2@victim.example", "v3@victim.example"])
        curl_smtp(c, "squid", "http://%s:3128" % P, ep(P, 3128), MX, 25, 40302, "relay-test.example",
                  "c@spam.example", ["v4@victim.example", "v5@victim.example"])
    finish(c)



def raw_connect(case, proxy_name, pport, target, thost, tport, sport, request=None, smtp=None,
                resolved=None, pip=P, cip=A1, relay_expected=None, method="CONNECT"):
    """Spamware-style raw client: request bytes exactly as given."""
    if request is None:
        request = "CONNECT %s HTTP/1.0\\r\\n\\r\\n" % target
    res = raw(case, sport, ep(pip, pport), request, smtp=smtp, cip=cip)
    code = res.get("status_code")
    established = code is not None and 200 <= code < 300
    status = "established" if established else ("refused" if code else "no-response")
    case.observations.append("%s answered `%s` to `%s`" % (
        proxy_sw(proxy_name), res.get("status_line"), request))
    case.add_sw(proxy_name)
    inc = case.incident(method=method, client=ep(cip, sport), proxy=ep(pip, pport),
                        proxy_software=proxy_sw(proxy_name), target=target, target_host=thost,
                        target_port=tport, target_resolved=resolved if resolved is not None else thost,
                        status=status, status_code=code, smtp=bool(smtp and established),
                        helo=smtp[0] if smtp and established else None,
                        mail_from=[smtp[1]] if smtp and established else [],
                        rcpt_to=list(smtp[2]) if smtp and established else [],
                        messages=res.get("messages", 0),
                        relay_expected=established if relay_expected is None else relay_expected,
                        client_software="raw client (python3 socket)")
    return inc, res


# --- 4
def connect_hostname():
    c = Case("connect_hostname", "Spam tunnels to a host-name target: `CONNECT mx.victim.example:25`. "
             "The proxies resolve the name through the lab's dnsmasq, so the DNS query and answer "
             "(198.51.100.25) sit between the CONNECT and the relay leg's SYN.")
    c.add_sw("dnsmasq")
    with uplink(c):
        swaks_socat(c, "tinyproxy", 8888, "mx.victim.example", 25, 40401, "bot.example",
                    "d@spam.example", ["v1@victim.example", "v2@victim.example"], resolved=MX)
        curl_smtp(c, "squid", "http://%s:3128" % P, ep(P, 3128), "mx.victim.example", 25, 40402,
                  "relay-test.example", "e@spam.example", ["v3@victim.example", "v4@victim.example"],
                  resolved=MX)
    c.dns_names = ["mx.victim.example"]
    finish(c)


# --- 5
def concurrent_pairing():
    n = 24
    c = Case("concurrent_pairing", "%d spam tunnels started at the same moment through one "
             "tinyproxy to one MTA, each with its own MAIL FROM (bulkNN@spam.example), mixed with "
             "8 benign HTTPS tunnels and 4 proxied GETs started at the same moment.  Pairing each "
             "tunnel with its relay leg by timing alone is ambiguous; the envelope tells them apart." % n)
    procs = []
    go = os.path.join(WORK, "go")
    if os.path.exists(go):
        os.unlink(go)
    with uplink(c):
        for i in range(n):
            inc, p = swaks_socat(c, "tinyproxy", 8888, MX, 25, 40501 + i, "bot%02d.example" % (i + 1),
                                 "bulk%02d@spam.example" % (i + 1),
                                 ["r%02da@victim.example" % (i + 1), "r%02db@victim.example" % (i + 1)],
                                 spawn=True, barrier=go)
            procs.append(p)
            if i % 3 == 0 and i // 3 < 8:
                procs.append(curl_get(c, "http://%s:8888" % P, ep(P, 8888), "https://%s/" % WEB,
                                      40551 + i // 3, kind="https-tunnel", spawn=True, barrier=go))
        for j in range(4):
            procs.append(curl_get(c, "http://%s:8888" % P, ep(P, 8888), "http://%s/news.html" % WEB,
                                  40561 + j, spawn=True, barrier=go))
        time.sleep(2)           # every client loaded and waiting
        c.commands.append("touch $WORK/go    # all clients start now")
        open(go, "w").close()
        deadline = time.monotonic() + 60
        for p in procs:
            p.wait(max(1, deadline - time.monotonic()))
            if p.returncode != 0:
                raise RuntimeError("concurrent client failed: %s" % p.stdout.read()[-2000:])
    finish(c)


# --- 6
def mail_ports():
    c = Case("mail_ports", "Tunnels to the submission port 587, to 2525, and to 8025 (not a mail "
             "port, but an SMTP server listens there: an incident because SMTP is spoken inside).")
    with uplink(c):
        swaks_socat(c, "tinyproxy", 8888, MX, 587, 40601, "bot.example", "f587@spam.example",
                    ["v1@victim.example", "v2@victim.example"])
        swaks_socat(c, "tinyproxy", 8888, MX, 2525, 40602, "bot.example", "f2525@spam.example",
                    ["v3@victim.example", "v4@victim.example"])
        swaks_socat(c, "squid", 3128, MX, 8025, 40603, "bot.example", "f8025@spam.example",
                    ["v5@victim.example", "v6@victim.example"])
        curl_smtp(c, "squid", "http://%s:3128" % P, ep(P, 3128), MX, 587, 40604, "relay-test.example",
                  "g587@spam.example", ["v7@victim.example", "v8@victim.example"])
    finish(c)


# --- 7
def refused():
    c = Case("refused", "Refused attempts to mail ports: squid with the stock `deny CONNECT "
             "!SSL_ports` rule (port 3129) and tinyproxy with `ConnectPort 443` (port 8080) answer "
             "403 without contacting the MTA; tinyproxy and squid asked for a host where nothing "
             "listens on the mail port try it (SYN answered by RST) and answer 5xx.  Plus one "
             "allowed HTTPS tunnel through the strict squid port.")
    smtp = ("bot.example", "h@spam.example", ["v1@victim.example", "v2@victim.example"])
    with uplink(c):
        raw_connect(c, "squid", 3129, "%s:25" % MX, MX, 25, 40701, smtp=smtp, relay_expected=False)
        raw_connect(c, "tinyproxy", 8080, "%s:25" % MX, MX, 25, 40702, smtp=smtp, relay_expected=False)
        raw_connect(c, "tinyproxy", 8888, "%s:25" % MX_DEAD, MX_DEAD, 25, 40703, smtp=smtp,
                    relay_expected=True)
        raw_connect(c, "squid", 3128, "%s:587" % MX_DEAD, MX_DEAD, 587, 40704, smtp=smtp,
                    relay_expected=True)
        curl_get(c, "http://%s:3129" % P, ep(P, 3129), "https://%s/" % WEB, 40705, kind="https-tunnel")
    for inc in c.incidents:
        if inc["status"] != "refused":
            raise RuntimeError("refused: %s was not refused" % inc["id"])
    finish(c)


# --- 8
def post_relay():
    c = Case("post_relay", "Absolute-URI relay: `POST http://198.51.100.25:25/ HTTP/1.0` to an "
             "open squid (no Safe_ports rule) and to tinyproxy, with a body of SMTP commands.  The "
             "proxy opens a plain TCP connection to the MTA and sends its HTTP request line and "
             "headers (answered with SMTP errors) followed by the body, which the MTA reads as "
             "SMTP commands.")
    body = ("HELO spam.example\r\nMAIL FROM:<%s>\r\nRCPT TO:<v1@victim.example>\r\n"
            "RCPT TO:<v2@victim.example>\r\nDATA\r\nSubject: offer\r\n\r\ncheap watches\r\n.\r\nQUIT\r\n")
    with uplink(c):
        for sport, pname, pport, mfrom in ((40801, "squid", 3128, "post1@spam.example"),
                                           (40802, "tinyproxy", 8888, "post2@spam.example")):
            b = body % mfrom
            req = ("POST http://%s:25/ HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                   % (MX, len(b)) + b)
            res = raw(c, sport, ep(P, pport), req.replace("\r\n", "\\r\\n"), read_all=True, timeout=6)
            c.add_sw(pname)
            resp = res.get("response", "")
            code = res.get("status_code")
            c.observations.append("%s answered the POST with `%s`%s" % (
                proxy_sw(pname), res.get("status_line"),
                "; the MTA's replies came back in the response body" if "220 " in resp else ""))
            c.incident(method="POST", client=ep(A1, sport), proxy=ep(P, pport), proxy_software=proxy_sw(pname),
                       target="%s:25" % MX, request_uri="http://%s:25/" % MX, target_host=MX, target_port=25,
                       target_resolved=MX, status="established" if code and code < 300 else
                       ("refused" if code else "no-response"),
                       status_code=code, smtp=True, helo="spam.example", mail_from=[mfrom],
                       rcpt_to=["v1@victim.example", "v2@victim.example"], messages=None,
                       relay_expected=True, client_software="raw client (python3 socket)")
    finish(c)


# --- 9
def socks5():
    c = Case("socks5", "SMTP through a SOCKS5 proxy (microsocks on 1080): curl with an IP target, "
             "curl with a host name resolved by the proxy (socks5h, ATYP domain: the proxy's DNS "
             "lookup is in the capture), and swaks piped through ncat's SOCKS5 client.")
    c.add_sw("microsocks", "dnsmasq")
    with uplink(c):
        curl_smtp(c, "microsocks", "socks5://%s:1080" % P, ep(P, 1080), MX, 25, 40901, "bot.example",
                  "s1@spam.example", ["v1@victim.example", "v2@victim.example"], method="SOCKS5",
                  status_code=0)
        curl_smtp(c, "microsocks", "socks5h://%s:1080" % P, ep(P, 1080), "mx.victim.example", 25, 40902,
                  "bot.example", "s2@spam.example", ["v3@victim.example", "v4@victim.example"],
                  method="SOCKS5", status_code=0, resolved=MX)
        pipe = "ncat --proxy %s:1080 --proxy-type socks5 -s %s -p 40903 %s 25" % (P, A1, MX)
        run_client(c, "a", swaks_argv(pipe, "bot.example", "s3@spam.example",
                                      ["v5@victim.example", "v6@victim.example"]))
        c.add_sw("swaks", "ncat")
        c.incident(method="SOCKS5", client=ep(A1, 40903), proxy=ep(P, 1080), proxy_software=proxy_sw("microsocks"),
                   target="%s:25" % MX, target_host=MX, target_port=25, target_resolved=MX, status_code=0,
                   helo="bot.example", mail_from=["s3@spam.example"],
                   rcpt_to=["v5@victim.example", "v6@victim.example"], messages=1, relay_expected=True,
                   client_software="swaks via ncat SOCKS5")
    c.dns_names = ["mx.victim.example"]
    finish(c)


# --- 10
def one_leg():
    ct = Case("one_leg_tunnel", "Only the tunnel leg is visible: the capture was taken on the "
              "attacker's side, so the relay leg (proxy to MTA) is not in it.  The detector must "
              "flag the tunnel from the CONNECT and the SMTP inside, with pairing `none`.",
              capture_point="client side", legs=("tunnel",))
    cr = Case("one_leg_relay", "Only the relay leg is visible: the capture was taken at the MTA's "
              "side of the same session as one_leg_tunnel.  It is a plain SMTP session from the "
              "proxy's address; with no tunnel to explain it, the design says it carries no "
              "`smtp-over-http` (the incident is listed with expected_flag false).",
              capture_point="MTA side", legs=("relay",))
    with Capture([("a", "a0", os.path.join(CAPDIR, "one_leg_tunnel.pcap")),
                  ("s", "s0", os.path.join(CAPDIR, "one_leg_relay.pcap"))]):
        inc = swaks_socat(ct, "tinyproxy", 8888, MX, 25, 41001, "bot.example", "leg@spam.example",
                          ["v1@victim.example", "v2@victim.example"])
    inc.pop("relay_expected")
    inc2 = json.loads(json.dumps(inc))
    inc2["relay_expected"] = True
    inc2["expected_flag"] = False
    inc2["note"] = "tunnel leg not in this capture; it is in one_leg_tunnel.pcap"
    inc["note"] = "relay leg not in this capture; it is in one_leg_relay.pcap"
    cr.incidents.append(inc2)
    cr.commands, cr.software = ct.commands, ct.software
    finish(ct)
    finish(cr)


# --- 11
def ipv6():
    c = Case("ipv6", "IPv6 targets: `CONNECT [2001:db8::25]:25` from an IPv4 client through "
             "tinyproxy, the same from an IPv6 client through squid's IPv6 socket, and an IPv6 "
             "client through tinyproxy with swaks piped through ncat's HTTP proxy client.")
    with uplink(c):
        curl_smtp(c, "tinyproxy", "http://%s:8888" % P, ep(P, 8888), MX6, 25, 41101, "bot6.example",
                  "six1@spam.example", ["v1@victim.example", "v2@victim.example"])
        curl_smtp(c, "squid", "http://[%s]:3128" % P6, ep(P6, 3128), MX6, 25, 41102, "bot6.example",
                  "six2@spam.example", ["v3@victim.example", "v4@victim.example"], cip=A6)
        pipe = "ncat --proxy [%s]:8888 --proxy-type http -s %s -p 41103 %s 25" % (P6, A6, MX6)
        run_client(c, "a", swaks_argv(pipe, "bot6.example", "six3@spam.example",
                                      ["v5@victim.example", "v6@victim.example"]))
        c.add_sw("swaks", "ncat")
        c.incident(method="CONNECT", client=ep(A6, 41103), proxy=ep(P6, 8888), proxy_software=proxy_sw("tinyproxy"),
                   target=None, target_host=MX6, target_port=25, target_resolved=MX6,
                   helo="bot6.example", mail_from=["six3@spam.example"],
                   rcpt_to=["v5@victim.example", "v6@victim.example"], messages=1, relay_expected=True,
                   client_software="swaks via ncat HTTP proxy client")
    # ncat writes the target its own way; take the request line's target as written
    streams, _ = soh_labels.load(os.path.join(CAPDIR, c.name + ".pcap"))
    s = soh_labels.find_stream(streams, ep(A6, 41103), ep(P6, 8888))
    line = s.c2s.split(b"\r\n", 1)[0].decode() if s else ""
    c.incidents[-1]["target"] = line.split()[1] if line.startswith("CONNECT ") else "[%s]:25" % MX6
    c.observations.append("ncat %s sent `%s`" % (software("ncat")[0].split()[1], line))
    finish(c)


# --- 12
def odd_port_proxy():
    c = Case("odd_port_proxy", "Open proxies on ports Wireshark does not dissect as HTTP by "
             "default: tinyproxy on 6588 and squid on 8240, each abused for one spam tunnel.")
    with uplink(c):
        swaks_socat(c, "tinyproxy", 6588, MX, 25, 41201, "bot.example", "odd1@spam.example",
                    ["v1@victim.example", "v2@victim.example"])
        swaks_socat(c, "squid", 8240, MX, 25, 41202, "bot.example", "odd2@spam.example",
                    ["v3@victim.example", "v4@victim.example"])
    finish(c)


# --- 13
def malformed_request():
    c = Case("malformed_request", "Spamware-style malformed requests sent with a raw client: "
             "`CONNECT 198.51.100.25:25 / HTTP/1.0` followed by a header line without a name, "
             "the same without that header line, and a well-formed request line followed by the "
             "nameless header line, each sent to tinyproxy and to squid.  What each real proxy did "
             "is recorded below (answers other than 2xx are refused attempts to a mail port); "
             "where it answered 2xx the client spoke SMTP in the tunnel.")
    variants = (
        "CONNECT %s:25 / HTTP/1.0\\r\\n: keep-alive\\r\\n\\r\\n" % MX,
        "CONNECT %s:25 / HTTP/1.0\\r\\n\\r\\n" % MX,
        "CONNECT %s:25 HTTP/1.0\\r\\n: keep-alive\\r\\n\\r\\n" % MX,
    )
    sport = 41301
    with uplink(c):
        for req in variants:
            for pname, pport in (("tinyproxy", 8888), ("squid", 3128)):
                raw_connect(c, pname, pport, "%s:25" % MX, MX, 25, sport, request=req,
                            smtp=("bot.example", "mal%d@spam.example" % (sport - 41300),
                                  ["v1@victim.example", "v2@victim.example"]))
                sport += 1
    finish(c)


# --- 14
def socks4():
    c = Case("socks4", "SMTP through a SOCKS4 proxy (Dante's danted on 1081, open to all): swaks "
             "piped through ncat's SOCKS4 client, and curl with socks4://.")
    c.add_sw("danted", "swaks", "ncat")
    with uplink(c):
        pipe = "ncat --proxy %s:1081 --proxy-type socks4 -s %s -p 41401 %s 25" % (P, A1, MX)
        run_client(c, "a", swaks_argv(pipe, "bot.example", "k1@spam.example",
                                      ["v1@victim.example", "v2@victim.example"]))
        c.incident(method="SOCKS4", client=ep(A1, 41401), proxy=ep(P, 1081), proxy_software=proxy_sw("danted"),
                   target="%s:25" % MX, target_host=MX, target_port=25, target_resolved=MX, status_code=90,
                   helo="bot.example", mail_from=["k1@spam.example"],
                   rcpt_to=["v1@victim.example", "v2@victim.example"], messages=1, relay_expected=True,
                   client_software="swaks via ncat SOCKS4")
        curl_smtp(c, "danted", "socks4://%s:1081" % P, ep(P, 1081), MX, 25, 41402, "bot.example",
                  "k2@spam.example", ["v3@victim.example", "v4@victim.example"], method="SOCKS4",
                  status_code=90)
    finish(c)


# --- 15
def chain_conf(case, name, proxies):
    """A proxychains4 configuration: strict_chain through `proxies`
    [(type, ip, port), ...], no proxy DNS (the targets are addresses)."""
    conf = os.path.join(WORK, name)
    lines = ["strict_chain", "quiet_mode", "tcp_read_time_out 15000", "tcp_connect_time_out 8000",
             "[ProxyList]"] + ["%s %s %d" % p for p in proxies]
    write(conf, "\n".join(lines) + "\n")
    case.observations.append("`$WORK/%s` (proxychains4 configuration): `%s`" % (name, "` / `".join(lines)))
    return conf


def client_from_capture(case, inc, first_request):
    """Clients run under proxychains4 open their own socket to the first
    proxy, so their source port is ephemeral: take the tunnel leg from the
    capture (from the client's address to the first proxy, starting with
    the first request, carrying this incident's MAIL FROM)."""
    streams, _ = soh_labels.load(os.path.join(CAPDIR, case.name + ".pcap"))
    cip = soh_labels.split_ep(inc["client"])[0]
    key = ("MAIL FROM:<%s>" % inc["mail_from"][0]).encode()
    found = [x for x in streams.values() if x.server == inc["proxy"] and soh_labels.split_ep(x.client)[0] == cip
             and x.c2s.startswith(first_request.encode()) and key in x.c2s]
    if len(found) != 1:
        raise RuntimeError("%s %s: %d tunnel legs found for %s" % (case.name, inc["id"], len(found), key))
    inc["client"] = found[0].client
    inc["note"] = ("client port taken from the capture: proxychains4 connects to the first proxy "
                   "from a socket of its own, with an ephemeral port")


def chain():
    c = Case("chain", "Proxy chains: one spam incident crosses two open proxies, P (203.0.113.1) "
             "and Q (198.18.0.1, a second proxy host on its own link), before the MTA.  Captured in the "
             "router, so every leg is in the capture: client -> P, P -> Q (the hop), Q -> MTA (the "
             "relay leg).  i1, i2: client-driven chains made by proxychains4 (strict_chain, two `http` "
             "proxies): the client asks P for `CONNECT 198.18.0.1:8888`, then asks Q, inside that "
             "tunnel, for `CONNECT 198.51.100.25:25`, then speaks SMTP.  i3: a config-driven chain: "
             "tinyproxy on P port 8890 with `Upstream http 198.18.0.1:8888` forwards the client's "
             "`CONNECT 198.51.100.25:25` to Q as the same CONNECT.  i4: a mixed chain, HTTP CONNECT "
             "to P then SOCKS5 (microsocks) on Q, made by proxychains4.",
             capture_point="router", legs=("tunnel", "hop", "relay"))
    c.proxy_addresses = [P, P6, Q, Q6]
    c.add_sw("proxychains4", "swaks", "curl", "socat", "tinyproxy", "squid", "microsocks")
    msg = ["--header", "Subject: limited offer", "--body", "Buy cheap watches now.", "--timeout", "10"]
    qhttp = ep(Q, 8888)
    pending = []
    with Capture([("r", "any", os.path.join(CAPDIR, c.name + ".pcap"), "in")]):
        # i1: proxychains4 + swaks, tinyproxy on P then tinyproxy on Q
        conf = chain_conf(c, "proxychains-1.conf", [("http", P, 8888), ("http", Q, 8888)])
        rc = ["c1a@victim.example", "c1b@victim.example"]
        run_client(c, "a", ["proxychains4", "-f", conf, "swaks", "--server", MX, "--port", "25",
                            "--local-interface", A1, "--helo", "bot.example", "--from", "chain1@spam.example",
                            "--to", ",".join(rc)] + msg)
        inc = c.incident(method="CONNECT", client=ep(A1, 0), proxy=ep(P, 8888), proxy_software=proxy_sw("tinyproxy"),
                         target="%s:25" % MX, target_host=MX, target_port=25, target_resolved=MX,
                         helo="bot.example", mail_from=["chain1@spam.example"], rcpt_to=rc, messages=1,
                         relay_expected=True, first_request_target=qhttp, chain="client",
                         hops=[{"client_ip": P, "server": qhttp, "method": "CONNECT",
                                "request_target": "%s:25" % MX, "proxy_software": proxy_sw("tinyproxy")}],
                         client_software="swaks under proxychains4 (http P, http Q)")
        pending.append((inc, "CONNECT %s " % qhttp))
        # i2: proxychains4 + curl, squid on P then tinyproxy on Q
        conf = chain_conf(c, "proxychains-2.conf", [("http", P, 3128), ("http", Q, 8888)])
        rc = ["c2a@victim.example", "c2b@victim.example"]
        argv = ["proxychains4", "-f", conf, "curl", "-sS", "--max-time", "20", "--interface", A1,
                "smtp://%s:25/relay-test.example" % MX, "--mail-from", "chain2@spam.example"]
        for r in rc:
            argv += ["--mail-rcpt", r]
        run_client(c, "a", argv + ["-T", msgfile()])
        inc = c.incident(method="CONNECT", client=ep(A1, 0), proxy=ep(P, 3128), proxy_software=proxy_sw("squid"),
                         target="%s:25" % MX, target_host=MX, target_port=25, target_resolved=MX,
                         helo="relay-test.example", mail_from=["chain2@spam.example"], rcpt_to=rc, messages=1,
                         relay_expected=True, first_request_target=qhttp, chain="client",
                         hops=[{"client_ip": P, "server": qhttp, "method": "CONNECT",
                                "request_target": "%s:25" % MX, "proxy_software": proxy_sw("tinyproxy")}],
                         client_software="curl under proxychains4 (http P, http Q)")
        pending.append((inc, "CONNECT %s " % qhttp))
        # i3: config-driven: tinyproxy on P:8890 forwards to its upstream Q
        inc = swaks_socat(c, "tinyproxy", 8890, MX, 25, 41503, "bot.example", "chain3@spam.example",
                          ["c3a@victim.example", "c3b@victim.example"])
        inc.update(first_request_target="%s:25" % MX, chain="proxy",
                   hops=[{"client_ip": P, "server": qhttp, "method": "CONNECT", "request_target": "%s:25" % MX,
                          "proxy_software": proxy_sw("tinyproxy")}])
        c.observations.append("tinyproxy on P port 8890 runs with `Upstream http %s:8888`; it sends the "
                              "client's CONNECT on to Q" % Q)
        # i4: mixed chain: HTTP CONNECT to P, then SOCKS5 on Q
        conf = chain_conf(c, "proxychains-4.conf", [("http", P, 8888), ("socks5", Q, 1080)])
        rc = ["c4a@victim.example", "c4b@victim.example"]
        run_client(c, "a", ["proxychains4", "-f", conf, "swaks", "--server", MX, "--port", "25",
                            "--local-interface", A1, "--helo", "bot.example", "--from", "chain4@spam.example",
                            "--to", ",".join(rc)] + msg)
        inc = c.incident(method="CONNECT", client=ep(A1, 0), proxy=ep(P, 8888), proxy_software=proxy_sw("tinyproxy"),
                         target="%s:25" % MX, target_host=MX, target_port=25, target_resolved=MX,
                         helo="bot.example", mail_from=["chain4@spam.example"], rcpt_to=rc, messages=1,
                         relay_expected=True, first_request_target=ep(Q, 1080), chain="client",
                         hops=[{"client_ip": P, "server": ep(Q, 1080), "method": "SOCKS5",
                                "request_target": "%s:25" % MX, "proxy_software": proxy_sw("microsocks")}],
                         client_software="swaks under proxychains4 (http P, socks5 Q)")
        pending.append((inc, "CONNECT %s " % ep(Q, 1080)))
    for inc, first in pending:
        client_from_capture(c, inc, first)
    finish(c)


# --- 16
def post_dropped():
    c = Case("post_dropped", "The mail server's reaction to an absolute-URI relay.  A real Postfix "
             "smtpd (3.7, stand-alone mode as `sendmail -bs` runs it, one process per connection "
             "through socat, as nobody) listens on 198.51.100.27:25.  `POST http://198.51.100.27:25/ "
             "HTTP/1.0` with a body of SMTP commands is sent to squid (3128) and to tinyproxy (8888), "
             "and `GET http://198.51.100.27:25/ HTTP/1.0` to squid.  Postfix's "
             "`smtpd_forbidden_commands` (default `CONNECT GET POST`) makes it answer the HTTP request "
             "line with `221 2.7.0 Error: I can break rules, too. Goodbye.` and close the connection: "
             "the body's SMTP commands are never answered (relay_reaction `dropped`, compare post_relay, "
             "where smtp-sink answers the HTTP lines with errors and then accepts the mail).")
    c.add_sw("smtpd", "socat")
    body = ("HELO spam.example\r\nMAIL FROM:<%s>\r\nRCPT TO:<v1@victim.example>\r\n"
            "RCPT TO:<v2@victim.example>\r\nDATA\r\nSubject: offer\r\n\r\ncheap watches\r\n.\r\nQUIT\r\n")
    tests = ((41601, "squid", 3128, "POST", "drop1@spam.example"),
             (41602, "tinyproxy", 8888, "POST", "drop2@spam.example"),
             (41603, "squid", 3128, "GET", None))
    with uplink(c):
        for sport, pname, pport, method, mfrom in tests:
            if method == "POST":
                b = body % mfrom
                req = ("POST http://%s:25/ HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                       % (MX_PF, len(b)) + b)
            else:
                req = "GET http://%s:25/ HTTP/1.0\r\nAccept: */*\r\n\r\n" % MX_PF
            res = raw(c, sport, ep(P, pport), req.replace("\r\n", "\\r\\n"), read_all=True, timeout=6)
            c.add_sw(pname)
            code = res.get("status_code")
            resp = res.get("response", "")
            c.observations.append("%s answered the %s with `%s`%s" % (
                proxy_sw(pname), method, res.get("status_line"),
                "; the MTA's replies came back in the response body" if "221 2.7.0" in resp else ""))
            c.incident(method=method, client=ep(A1, sport), proxy=ep(P, pport), proxy_software=proxy_sw(pname),
                       target="%s:25" % MX_PF, request_uri="http://%s:25/" % MX_PF, target_host=MX_PF,
                       target_port=25, target_resolved=MX_PF,
                       status="established" if code and code < 300 else ("refused" if code else "no-response"),
                       status_code=code, smtp=bool(mfrom), helo="spam.example" if mfrom else None,
                       mail_from=[mfrom] if mfrom else [],
                       rcpt_to=["v1@victim.example", "v2@victim.example"] if mfrom else [],
                       messages=None, relay_expected=True, relay_reaction="dropped",
                       client_software="raw client (python3 socket)")
    finish(c)


# --- 17
def socks_variants():
    c = Case("socks_variants", "SOCKS forms not covered by socks4/socks5, all with a host-name target "
             "that the proxy resolves through the lab's DNS (the lookups are in the capture).  SOCKS4a "
             "(host name after the USERID, DSTIP 0.0.0.1) to OpenSSH's dynamic forwarding (`ssh -D` on "
             "P port 1082, logged in to an sshd on P's loopback, so the SSH session is not on the "
             "wire): curl with socks4a:// and swaks through ncat's SOCKS4 client with --proxy-dns "
             "remote.  SOCKS5 with ATYP domain on a port other than 1080: curl with socks5h:// to "
             "microsocks on 9050, and swaks through ncat's SOCKS5 client to `ssh -D`.  (Dante's danted "
             "1.4.2 refuses SOCKS4a requests with CD 91, so it is not used here.)")
    PROXY_SW["ssh"] = "OpenSSH %s ssh -D" % software("ssh")[0].split()[1]
    c.add_sw("ssh", "sshd", "microsocks", "dnsmasq", "swaks", "ncat", "curl")
    name = "mx.victim.example"
    with uplink(c):
        curl_smtp(c, "ssh", "socks4a://%s:1082" % P, ep(P, 1082), name, 25, 41701, "bot.example",
                  "v4a1@spam.example", ["v1@victim.example", "v2@victim.example"], method="SOCKS4a",
                  status_code=90, resolved=MX)
        pipe = "ncat --proxy %s:1082 --proxy-type socks4 --proxy-dns remote -s %s -p 41702 %s 25" % (P, A1, name)
        run_client(c, "a", swaks_argv(pipe, "bot.example", "v4a2@spam.example",
                                      ["v3@victim.example", "v4@victim.example"]))
        c.incident(method="SOCKS4a", client=ep(A1, 41702), proxy=ep(P, 1082), proxy_software=proxy_sw("ssh"),
                   target="%s:25" % name, target_host=name, target_port=25, target_resolved=MX, status_code=90,
                   helo="bot.example", mail_from=["v4a2@spam.example"],
                   rcpt_to=["v3@victim.example", "v4@victim.example"], messages=1, relay_expected=True,
                   client_software="swaks via ncat SOCKS4 (--proxy-dns remote)")
        curl_smtp(c, "microsocks", "socks5h://%s:9050" % P, ep(P, 9050), name, 25, 41703, "bot.example",
                  "v5a@spam.example", ["v5@victim.example", "v6@victim.example"], method="SOCKS5",
                  status_code=0, resolved=MX)
        pipe = "ncat --proxy %s:1082 --proxy-type socks5 --proxy-dns remote -s %s -p 41704 %s 25" % (P, A1, name)
        run_client(c, "a", swaks_argv(pipe, "bot.example", "v5b@spam.example",
                                      ["v7@victim.example", "v8@victim.example"]))
        c.incident(method="SOCKS5", client=ep(A1, 41704), proxy=ep(P, 1082), proxy_software=proxy_sw("ssh"),
                   target="%s:25" % name, target_host=name, target_port=25, target_resolved=MX, status_code=0,
                   helo="bot.example", mail_from=["v5b@spam.example"],
                   rcpt_to=["v7@victim.example", "v8@victim.example"], messages=1, relay_expected=True,
                   client_software="swaks via ncat SOCKS5 (--proxy-dns remote)")
    c.dns_names = [name]
    finish(c)


# --- 18
def https_proxy():
    c = Case("https_proxy", "An HTTPS proxy: the clients speak TLS to the proxy (stunnel on 8443 in "
             "front of tinyproxy) and the CONNECT travels inside that TLS.  One spam tunnel to "
             "198.51.100.25:25, then a proxied GET and a proxied HTTPS fetch through the same HTTPS "
             "proxy (benign).  curl wrote its TLS keys to a key log, which is embedded in the "
             "capture (pcapng Decryption Secrets Block, `editcap --inject-secrets`) and kept beside it "
             "as https_proxy.keylog.")
    keylog = os.path.join(WORK, "https_proxy.keylog")
    raw_pcap = os.path.join(WORK, "https_proxy.pcap")
    purl = "https://%s:8443" % P
    env = ["env", "SSLKEYLOGFILE=" + keylog]
    with Capture([("p", "p0", raw_pcap)]):
        inc = curl_smtp(c, "tinyproxy", purl, ep(P, 8443), MX, 25, 41801, "tls-bot.example",
                        "a@spam.example", ["v1@victim.example", "v2@victim.example"],
                        pre=env, opts=["--proxy-insecure"])
        inc["proxy_tls"] = True
        inc["proxy_software"] = "stunnel %s in front of %s" % (software("stunnel")[0].split()[1],
                                                               proxy_sw("tinyproxy"))
        curl_get(c, purl, ep(P, 8443), "http://%s/index.html" % WEB, 41802, pre=env,
                 opts=["--proxy-insecure"])
        curl_get(c, purl, ep(P, 8443), "https://%s/" % WEB, 41803, kind="https-tunnel",
                 pre=env, opts=["--proxy-insecure"])
    c.add_sw("stunnel")
    # editcap 4.0 cannot read back what its --inject-secrets wrote ("can't be
    # written as a pcapng file", also for -c cuts); tshark -w rewrites it in
    # a form that editcap, tshark and Wireshark all take, the secrets kept.
    injected = os.path.join(WORK, "https_proxy-injected.pcapng")
    c.commands.append("editcap --inject-secrets tls,https_proxy.keylog https_proxy.pcap injected.pcapng")
    c.commands.append("tshark -r injected.pcapng -w https_proxy.pcapng")
    shutil.copyfile(keylog, os.path.join(CAPDIR, "https_proxy.keylog"))
    sh(["editcap", "--inject-secrets", "tls," + keylog, raw_pcap, injected])
    sh(["tshark", "-r", injected, "-w", os.path.join(CAPDIR, "https_proxy.pcapng")])
    finish(c, pcap_name="https_proxy.pcapng")


# --- 19
def concurrent_mixed():
    n, nh, ng = 40, 8, 4
    c = Case("concurrent_mixed", "%d spam tunnels started at the same moment through one tinyproxy "
             "(8888) to one MTA (198.51.100.25:25), each with its own client port, HELO "
             "(botNN.example), MAIL FROM (massNN@spam.example) and two recipients; at the same moment "
             "%d benign HTTPS tunnels and %d proxied plain-HTTP GETs through the same tinyproxy (so "
             "the proxy opens its own connections to the web server's ports 443 and 80 during the "
             "burst), and one legitimate SMTP session to the same MTA that does not go through the "
             "proxy (swaks straight to 198.51.100.25:25, sent from the proxy host's own address as in "
             "benign_only: a session from another client address would not cross the proxy's uplink, "
             "so it would not be in this capture).  So many relay legs to the same MTA open within "
             "milliseconds of each other, next to a session from the same address to the same MTA "
             "that is no relay leg at all, and next to the proxy's own web fetches: pairing a tunnel "
             "with its relay leg by timing alone is ambiguous, only the envelope tells them apart.  "
             "A single pass must not state a pairing that the full (two-pass) analysis contradicts, "
             "must not pair a tunnel with the direct session, and must not mark the benign streams "
             "(the HTTPS tunnels, the proxied GETs, the proxy's connections to the web server, the "
             "direct SMTP session)." % (n, nh, ng))
    procs = []
    go = os.path.join(WORK, "go")
    if os.path.exists(go):
        os.unlink(go)
    with uplink(c):
        for i in range(n):
            k = i + 1
            inc, p = swaks_socat(c, "tinyproxy", 8888, MX, 25, 41901 + i, "bot%02d.example" % k,
                                 "mass%02d@spam.example" % k,
                                 ["m%02da@victim.example" % k, "m%02db@victim.example" % k],
                                 spawn=True, barrier=go)
            procs.append(p)
            if i % 5 == 0 and i // 5 < nh:
                procs.append(curl_get(c, "http://%s:8888" % P, ep(P, 8888), "https://%s/" % WEB,
                                      41951 + i // 5, kind="https-tunnel", spawn=True, barrier=go))
            if i % 10 == 4 and i // 10 < ng:
                page = "news.html" if (i // 10) % 2 == 0 else "index.html"
                procs.append(curl_get(c, "http://%s:8888" % P, ep(P, 8888), "http://%s/%s" % (WEB, page),
                                      41961 + i // 10, spawn=True, barrier=go))
            if i == n // 2:
                # legitimate mail to the same MTA, not through the proxy
                argv = ["sh", "-c", wait_for(go) + '; exec "$@"', "sh",
                        "swaks", "--server", MX, "--port", "25", "--local-interface", P, "--local-port", "41970",
                        "--helo", "proxy.example", "--from", "backup@proxy.example",
                        "--to", "postmaster@victim.example", "--header", "Subject: backup report",
                        "--body", "nightly backup done", "--timeout", "10"]
                c.add_sw("swaks")
                procs.append(spawn_client(c, "p", argv))
                c.add_benign("direct-smtp", ep(P, 41970), ep(MX, 25),
                             note="legitimate mail to the same MTA, not through the proxy; swaks from the "
                                  "proxy host's own address, started with the burst")
        time.sleep(3)           # every client loaded and waiting
        c.commands.append("touch $WORK/go    # all clients start now")
        open(go, "w").close()
        deadline = time.monotonic() + 60
        for p in procs:
            p.wait(max(1, deadline - time.monotonic()))
            if p.returncode != 0:
                raise RuntimeError("concurrent client failed: %s" % p.stdout.read()[-2000:])
    finish(c)


# --- 20
def http_get(url, host):
    """A browser-like absolute-URI GET for a proxy (escaped for rawclient)."""
    return ("GET %s HTTP/1.1\\r\\nHost: %s\\r\\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\\r\\n"
            "Accept: */*\\r\\nProxy-Connection: keep-alive\\r\\n\\r\\n") % (url, host)


def http_connect(target, cred=None):
    """`CONNECT target HTTP/1.1` with a Host header and, when cred
    ("user:password") is given, a Proxy-Authorization: Basic header."""
    req = "CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n" % (target, target)
    if cred:
        req += "Proxy-Authorization: Basic %s\\r\\n" % base64.b64encode(cred.encode()).decode()
    return req + "Proxy-Connection: keep-alive\\r\\n\\r\\n"


def exchanges_seen(res, pname):
    """One observation line per request/answer pair the raw client saw."""
    out = []
    for k, e in enumerate(res.get("exchanges", [])):
        out.append("request %d `%s`: %s answered `%s` (%s, %d body bytes)%s" % (
            k, e["request_line"], pname, e["status_line"],
            "Connection: %s" % e["connection"] if e["connection"] else "no Connection header", e["body_bytes"],
            "; the proxy closed the connection" if e["proxy_closed"] else ""))
    return out


def requests_on(case, client, server):
    """Request lines of every HTTP request on the client's connection, from
    the capture: proof that they went out on one TCP connection."""
    streams, _ = soh_labels.load(os.path.join(CAPDIR, case.name + ".pcap"))
    s = soh_labels.find_stream(streams, client, server)
    if s is None:
        raise RuntimeError("%s: no connection %s -> %s" % (case.name, client, server))
    return [x["line"] for x in soh_labels.http_exchanges(s)]


def keepalive_squid():
    c = Case("keepalive_squid", "HTTP keep-alive: several requests on one TCP connection to squid "
             "(a second squid instance with `client_persistent_connections on`, port 3132).  Two raw "
             "clients first fetch ordinary web pages through squid with absolute-URI GETs "
             "(`GET http://198.51.100.80/... HTTP/1.1`, Host header, keep-alive), reading each answer "
             "in full, then on the SAME connection send `CONNECT 198.51.100.25:25 HTTP/1.1` (after two "
             "GETs, so request_index 2) and `CONNECT 198.51.100.25:587 HTTP/1.1` (after one GET, "
             "request_index 1), get 200 and speak SMTP through the tunnel, each with its own HELO and "
             "MAIL FROM.  The GETs before the CONNECT on those connections are not incidents: the "
             "frames that carry them (requests and answers) must carry no `smtp-over-http`; only the "
             "CONNECT request, its answer and the tunnel after it belong to the incident.  A third "
             "connection (curl, two URLs, one connection reused) carries only GETs and is benign.")
    c.add_sw("squid", "python3", "curl")
    pk = ep(P, 3132)
    clients = ((42001, ["index.html", "news.html"], 25, "ka1.example", "ka1@spam.example",
                ["k1@victim.example", "k2@victim.example"]),
               (42002, ["index.html"], 587, "ka2.example", "ka2@spam.example",
                ["k3@victim.example", "k4@victim.example"]))
    with uplink(c):
        for sport, pages, tport, helo, mfrom, rcpts in clients:
            target = "%s:%d" % (MX, tport)
            reqs = [http_get("http://%s/%s" % (WEB, pg), WEB) for pg in pages] + [http_connect(target)]
            res = raw(c, sport, pk, reqs, smtp=(helo, mfrom, rcpts))
            codes = [e["status_code"] for e in res.get("exchanges", [])]
            if codes != [200] * len(reqs) or res.get("messages") != 1:
                raise RuntimeError("keepalive_squid %d: answers %s, messages %s: %s" % (
                    sport, codes, res.get("messages"), res))
            c.proxied_benign += len(pages)       # squid fetches each page from the web server
            c.observations += ["client %s: %s" % (ep(A1, sport), o) for o in exchanges_seen(res, "squid")]
            c.incident(method="CONNECT", client=ep(A1, sport), proxy=pk, request_index=len(pages),
                       proxy_software=proxy_sw("squid"), target=target, target_host=MX, target_port=tport,
                       target_resolved=MX, helo=helo, mail_from=[mfrom], rcpt_to=list(rcpts), messages=1,
                       relay_expected=True,
                       note="request %d on its connection; the %s before it %s not part of the incident"
                            % (len(pages), "%d GETs" % len(pages) if len(pages) > 1 else "GET",
                               "are" if len(pages) > 1 else "is"),
                       client_software="raw client (python3 socket), keep-alive")
        urls = ["http://%s/index.html" % WEB, "http://%s/news.html" % WEB]
        run_client(c, "a", ["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "--max-time", "15",
                            "--interface", A2, "--local-port", "42003", "-x", "http://%s:3132" % P] + urls)
        c.add_benign("proxied-get", ep(A2, 42003), pk, via_proxy=True,
                     note="keep-alive: GET %s then GET %s on this one connection (curl reuses it)" % tuple(urls))
        c.proxied_benign += 1
    for inc in c.incidents:
        lines = requests_on(c, inc["client"], inc["proxy"])
        if len(lines) != inc["request_index"] + 1 or not lines[-1].startswith("CONNECT ") or \
                any(not l.startswith("GET ") for l in lines[:-1]):
            raise RuntimeError("keepalive_squid %s: requests on the connection: %s" % (inc["id"], lines))
        c.observations.append("in the capture, %s -> %s carries %s on one TCP connection" % (
            inc["client"], inc["proxy"], ", ".join("`%s`" % l for l in lines)))
    lines = requests_on(c, ep(A2, 42003), pk)
    if lines != ["GET %s HTTP/1.1" % u for u in urls]:
        raise RuntimeError("keepalive_squid: curl's connection carries %s" % lines)
    c.observations.append("in the capture, the benign %s -> %s carries %s on one TCP connection" % (
        ep(A2, 42003), pk, ", ".join("`%s`" % l for l in lines)))
    finish(c)


# --- 21
def auth_squid():
    good, wrong = "%s:%s" % SQUID_USERS[0], "admin:admin"
    c = Case("auth_squid", "A squid that asks for credentials: basic authentication (`auth_param "
             "basic program basic_ncsa_auth` with a password file, `http_access allow auth "
             "authenticated`; port 8088 of the second squid instance, which keeps client connections "
             "open).  One client sends `CONNECT 198.51.100.25:25 HTTP/1.1` without credentials, gets "
             "`407 Proxy Authentication Required`, then on the SAME connection sends the same CONNECT "
             "with `Proxy-Authorization: Basic` (valid account), gets 200 and speaks SMTP through the "
             "tunnel: two incidents on one connection, the refused first request (request_index 0, "
             "status refused, 407, no relay leg) and the established retry (request_index 1).  A second "
             "client gets 407, retries on the same connection with wrong credentials (`admin:admin`), "
             "gets 407 again and gives up: two refused incidents on one connection, no mail server "
             "reached.  A benign user (curl --proxy-anyauth) fetches a web page through the same port: "
             "407 to a GET, then the GET with credentials on the same connection, 200.")
    c.add_sw("squid", "python3", "curl")
    pa = ep(P, 8088)
    target = "%s:25" % MX
    tries = ((42101, [None, good], "auth1.example", "auth1@spam.example", ["a1@victim.example", "a2@victim.example"],
              [407, 200]),
             (42102, [None, wrong], "auth2.example", "auth2@spam.example", ["a3@victim.example", "a4@victim.example"],
              [407, 407]))
    with uplink(c):
        for sport, creds, helo, mfrom, rcpts, want in tries:
            res = raw(c, sport, pa, [http_connect(target, cr) for cr in creds], smtp=(helo, mfrom, rcpts))
            codes = [e["status_code"] for e in res.get("exchanges", [])]
            if codes != want:
                raise RuntimeError("auth_squid %d: answers %s, expected %s: %s" % (sport, codes, want, res))
            c.observations += ["client %s: %s" % (ep(A1, sport), o) for o in exchanges_seen(res, "squid")]
            for k, (cr, code) in enumerate(zip(creds, codes)):
                ok = code == 200
                c.incident(method="CONNECT", client=ep(A1, sport), proxy=pa, request_index=k,
                           proxy_software=proxy_sw("squid"), target=target, target_host=MX, target_port=25,
                           target_resolved=MX, status="established" if ok else "refused", status_code=code,
                           smtp=ok, helo=helo if ok else None, mail_from=[mfrom] if ok else [],
                           rcpt_to=list(rcpts) if ok else [], messages=res.get("messages", 0) if ok else 0,
                           relay_expected=ok,
                           note="request %d on its connection, %s" % (
                               k, "without credentials" if cr is None else
                               "Proxy-Authorization: Basic %s (%s)" % (
                                   base64.b64encode(cr.encode()).decode(),
                                   "valid account" if cr == good else "wrong credentials")),
                           client_software="raw client (python3 socket), keep-alive")
        argv = ["curl", "-sS", "-o", "/dev/null", "--max-time", "15", "--interface", A2, "--local-port", "42103",
                "-x", "http://%s:8088" % P, "--proxy-user", "%s:%s" % SQUID_USERS[1], "--proxy-anyauth",
                "http://%s/index.html" % WEB]
        run_client(c, "a", argv)
        c.add_benign("proxied-get", ep(A2, 42103), pa, via_proxy=True,
                     note="curl --proxy-anyauth: GET http://%s/index.html answered 407, then the same GET "
                          "with Proxy-Authorization: Basic on this connection, 200" % WEB)
    for sport in (42101, 42102):
        lines = requests_on(c, ep(A1, sport), pa)
        if lines != ["CONNECT %s HTTP/1.1" % target] * 2:
            raise RuntimeError("auth_squid %d: requests on the connection: %s" % (sport, lines))
        c.observations.append("in the capture, %s -> %s carries both CONNECTs on one TCP connection" % (
            ep(A1, sport), pa))
    lines = requests_on(c, ep(A2, 42103), pa)
    if lines != ["GET http://%s/index.html HTTP/1.1" % WEB] * 2:
        raise RuntimeError("auth_squid: curl's connection carries %s" % lines)
    c.observations.append("in the capture, the benign %s -> %s carries %s on one TCP connection" % (
        ep(A2, 42103), pa, ", ".join("`%s`" % l for l in lines)))
    c.observations.append("password file `$WORK/squid-passwd` (made with `openssl passwd -apr1`): "
                          "accounts %s" % ", ".join("`%s`" % u for u, _ in SQUID_USERS))
    finish(c)


CASES = [benign_only, connect_ip_tinyproxy, connect_ip_squid, connect_hostname, concurrent_pairing,
         mail_ports, refused, post_relay, socks5, socks4, one_leg, ipv6, odd_port_proxy, malformed_request,
         chain, post_dropped, socks_variants, https_proxy, concurrent_mixed, keepalive_squid,
         auth_squid]


def main(argv):
    if not WORK:
        sys.exit("run through make-captures.sh")
    want = set(argv)
    known = {f.__name__ for f in CASES}
    if want - known:
        sys.exit("unknown case(s): %s; known: %s" % (" ".join(sorted(want - known)), " ".join(sorted(known))))
    try:
        topology()
        services()
        for f in CASES:
            if not want or f.__name__ in want:
                log("case", f.__name__)
                f()
    finally:
        teardown()


if __name__ == "__main__":
    main(sys.argv[1:])
