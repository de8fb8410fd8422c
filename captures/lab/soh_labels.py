#!/usr/bin/python3
"""Check lab labels against their captures with tshark, discover relay-leg
and hop endpoints, and write the per-case .md notes.

  soh_labels.py check captures/*.labels.json     # verify committed labels

Standard library only; needs tshark.
"""
import ipaddress
import json
import os
import re
import subprocess
import sys

MAIL_PORTS = (25, 465, 587, 2525)


class CheckError(Exception):
    pass


def ep(ip, port):
    ip = str(ipaddress.ip_address(ip))
    return ("[%s]:%d" % (ip, port)) if ":" in ip else ("%s:%d" % (ip, port))


def split_ep(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def tshark(args):
    env = dict(os.environ, LC_ALL="C")
    r = subprocess.run(["tshark", "-n"] + args, capture_output=True, text=True,
                       timeout=300, env=env)
    if r.returncode != 0:
        raise CheckError("tshark failed: %s" % r.stderr.strip())
    return r.stdout


class Stream:
    def __init__(self, sid):
        self.id = sid
        self.client = None
        self.server = None
        self.frames = []          # (frame, time, from_client, flags, payload)
        self.c2s = b""
        self.s2c = b""
        self.syn = None
        self.decrypted = False    # payloads are TLS plaintext (decrypt_tls)

    def first_payload(self, from_client):
        for f in self.frames:
            if f[2] == from_client and f[4]:
                return f
        return None

    def __repr__(self):
        return "stream %d %s -> %s" % (self.id, self.client, self.server)


def load(pcap):
    out = tshark(["-r", pcap, "-Y", "tcp", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f",
                  "-e", "frame.number", "-e", "frame.time_relative",
                  "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src",
                  "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst",
                  "-e", "tcp.dstport", "-e", "tcp.flags", "-e", "tcp.payload"])
    streams = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 11:
            f += [""] * (11 - len(f))
        num, t, sid = int(f[0]), float(f[1]), int(f[2])
        src = ep(f[3] or f[4], int(f[5]))
        dst = ep(f[6] or f[7], int(f[8]))
        flags = int(f[9], 16)
        payload = bytes.fromhex(f[10].replace(":", "")) if f[10] else b""
        s = streams.get(sid)
        if s is None:
            s = streams[sid] = Stream(sid)
            # first frame decides: a SYN without ACK comes from the client
            if flags & 0x12 == 0x12:
                s.client, s.server = dst, src
            else:
                s.client, s.server = src, dst
        from_client = (src == s.client)
        if flags & 0x12 == 0x02 and s.syn is None:
            s.syn = num
        s.frames.append((num, t, from_client, flags, payload))
        if from_client:
            s.c2s += payload
        else:
            s.s2c += payload
    decrypt_tls(pcap, streams)
    dns = tshark(["-r", pcap, "-Y", "dns", "-T", "fields", "-E", "separator=\t",
                  "-e", "frame.number", "-e", "dns.flags.response",
                  "-e", "dns.qry.name", "-e", "dns.qry.type", "-e", "dns.a",
                  "-e", "dns.aaaa"])
    dnsrows = [l.split("\t") for l in dns.splitlines() if l.strip()]
    return streams, dnsrows


TLS_HANDSHAKE_TYPES = {1, 2, 4, 5, 8, 11, 13, 15, 20, 24}  # RFC 8446 §4


def tls_control(record):
    """Whether a decrypted TLS record is not application data: a run of
    handshake messages that fill it exactly (RFC 8446 §4: type, 24-bit
    length), or an alert (§6: level 1 or 2, then the description).  tshark
    shows the plaintext but no field holds it with its type, so the type is
    told from the bytes; HTTP and SMTP application data start with text."""
    if len(record) == 2 and record[0] in (1, 2):
        return True
    i = 0
    while i + 4 <= len(record) and record[i] in TLS_HANDSHAKE_TYPES:
        i += 4 + int.from_bytes(record[i + 1:i + 4], "big")
    return i == len(record) and i > 0


def decrypted_records(pcap):
    """frame number -> decrypted TLS records of that frame, in order, from
    tshark's hex dump of each frame's data sources (the key log embedded in
    a pcapng, or tls.keylog_file)."""
    out = tshark(["-r", pcap, "-P", "-x", "-o", 'gui.column.format:"No.","%m"'])
    records, frame, cur = {}, None, None
    for line in out.splitlines():
        if re.match(r"^\s*\d+$", line):
            frame, cur = int(line), None
        elif line.startswith("Decrypted TLS ("):
            cur = bytearray()
            records.setdefault(frame, []).append(cur)
        elif not line.strip() or re.match(r"^[A-Z][^:]* \(\d+ bytes?\):$", line):
            cur = None
        elif cur is not None:
            m = re.match(r"^[0-9a-f]{4}  ((?:[0-9a-f]{2} ?)+)", line)
            if m:
                cur.extend(bytes.fromhex(m.group(1).replace(" ", "")))
    return records


def decrypt_tls(pcap, streams):
    """A stream that is TLS from its first byte and that tshark decrypts
    (an HTTPS proxy with its key log) is read as its plaintext: each frame
    carries the application data of the records it completes."""
    tls = [s for s in streams.values() if s.c2s[:2] == b"\x16\x03"]
    if not tls:
        return
    records = decrypted_records(pcap)
    for s in tls:
        if not any(f[0] in records for f in s.frames):
            continue
        s.c2s = s.s2c = b""
        frames = []
        for num, t, from_client, flags, _ in s.frames:
            plain = b"".join(bytes(r) for r in records.get(num, []) if not tls_control(r))
            frames.append((num, t, from_client, flags, plain))
            if from_client:
                s.c2s += plain
            else:
                s.s2c += plain
        s.frames = frames
        s.decrypted = True


def smtp_lines(data):
    return [l for l in data.decode("latin-1").split("\r\n")]


def count_cmd(data, verb):
    return sum(1 for l in smtp_lines(data) if l.upper().startswith(verb))


def args_of(data, verb):
    res = []
    for l in smtp_lines(data):
        if l.upper().startswith(verb):
            m = re.search(r"<([^>]*)>", l)
            res.append(m.group(1) if m else l[len(verb):].strip())
    return res


def accepted_messages(server_bytes):
    """Messages the MTA accepted: a 354 reply followed by a 2xx reply."""
    n = 0
    pending = False
    for l in smtp_lines(server_bytes):
        if len(l) < 4 or l[3:4] != " ":
            continue
        if l.startswith("354"):
            pending = True
        elif pending:
            n += l.startswith("2")
            pending = False
    return n


def after_header(data):
    i = data.find(b"\r\n\r\n")
    return data[i + 4:] if i >= 0 else b""


def strip_handshake(method, c, sr):
    """Client and server bytes after one proxy handshake of `method`."""
    if method == "SOCKS5":
        # greeting (2 + NMETHODS) + request; reply 2 + reply; lengths vary with ATYP
        n = 2 + c[1] if len(c) > 1 else 3
        atyp = c[n + 3] if len(c) > n + 3 else 1
        alen = {1: 4, 4: 16}.get(atyp, (c[n + 4] + 1) if len(c) > n + 4 else 0)
        creq = n + 4 + alen + 2
        satyp = sr[5] if len(sr) > 5 else 1
        salen = {1: 4, 4: 16}.get(satyp, (sr[6] + 1) if len(sr) > 6 else 0)
        return c[creq:], sr[2 + 4 + salen + 2:]
    if method == "SOCKS4":
        end = c.find(b"\x00", 8)
        return c[end + 1:], sr[8:]
    if method == "SOCKS4a":
        end = c.find(b"\x00", 8)              # end of USERID
        end = c.find(b"\x00", end + 1)        # end of the host name
        return c[end + 1:], sr[8:]
    return after_header(c), after_header(sr)


HTTP_METHODS = ("CONNECT", "POST", "GET")


def _fields(head):
    """Lower-cased header names -> value, from a message header."""
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            out[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return out


def _length(fields):
    try:
        return int(fields.get("content-length", "0") or 0)
    except ValueError:
        return None


def _chunked_end(data, off):
    """Offset just past a chunked body that starts at off (None if cut)."""
    while True:
        e = data.find(b"\r\n", off)
        if e < 0:
            return None
        try:
            size = int(data[off:e].split(b";")[0].strip(), 16)
        except ValueError:
            return None
        off = e + 2
        if size == 0:
            while True:                          # trailers up to the empty line
                e = data.find(b"\r\n", off)
                if e < 0:
                    return None
                if e == off:
                    return off + 2
                off = e + 2
        off += size + 2


def http_exchanges(stream):
    """Every HTTP request on a client->proxy stream, in order, with the
    proxy's answer (keep-alive: several requests on one connection).  Each is
    a dict: `line` (request line), `method`, `req` / `req_end` (offsets into
    c2s of the request and of the byte after its header), `status` / `code`
    (the answer's status line and code, None if none), `resp` / `resp_end`
    (offsets into s2c).  A request ends after its header and Content-Length
    body; an answer as RFC 9112 section 6.3 says (no body after a 2xx to
    CONNECT or a 204/304; chunked; Content-Length; 1xx interim answers are
    skipped).  It stops after a CONNECT answered 2xx (the rest is the
    tunnel), after an answer whose body runs until the connection closes,
    and where the bytes end."""
    out = []
    c, sr = stream.c2s, stream.s2c
    ci = si = 0
    while ci < len(c):
        he = c.find(b"\r\n\r\n", ci)
        if he < 0:
            break
        head = c[ci:he]
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        ex = {"line": line, "method": line.split(" ", 1)[0], "req": ci, "req_end": he + 4,
              "status": None, "code": None, "resp": None, "resp_end": None}
        out.append(ex)
        blen = _length(_fields(head))
        if blen is None:
            return out
        ci = he + 4 + blen
        while True:
            rhe = sr.find(b"\r\n\r\n", si)
            if rhe < 0:
                return out
            rhead = sr[si:rhe]
            status = rhead.split(b"\r\n", 1)[0].decode("latin-1")
            m = re.match(r"HTTP/\d\.\d (\d{3})", status)
            code = int(m.group(1)) if m else None
            if code is not None and 100 <= code < 200 and code != 101:
                si = rhe + 4
                continue
            break
        ex.update(status=status, code=code, resp=si, resp_end=rhe + 4)
        if code is None or (ex["method"] == "CONNECT" and 200 <= code < 300) or code == 101:
            return out
        rf = _fields(rhead)
        if ex["method"] == "HEAD" or code in (204, 304):
            si = rhe + 4
        elif "chunked" in rf.get("transfer-encoding", "").lower():
            e = _chunked_end(sr, rhe + 4)
            if e is None:
                return out
            si = e
        elif "content-length" in rf and _length(rf) is not None:
            si = rhe + 4 + _length(rf)
        else:
            return out                           # body until the proxy closes
    return out


def tunnel_payload(inc, s, hops=None):
    """Client->proxy and proxy->client bytes after the proxy handshake.
    For a client-driven chain, the handshakes with the later proxies (the
    hops) travel inside the tunnel too and are stripped in order.  For an
    HTTP request that is not the first on its connection (`request_index`),
    the bytes after that request's header and after its answer's header."""
    k = inc.get("request_index", 0)
    if k and inc["method"] in HTTP_METHODS:
        exs = http_exchanges(s)
        ex = exs[k] if k < len(exs) else None
        c = s.c2s[ex["req_end"]:] if ex else b""
        sr = s.s2c[ex["resp_end"]:] if ex and ex["resp_end"] is not None else b""
    else:
        c, sr = strip_handshake(inc["method"], s.c2s, s.s2c)
    if hops is None:
        hops = inc.get("hops", []) if inc.get("chain") == "client" else []
    for h in hops:
        c, sr = strip_handshake(h["method"], c, sr)
    return c, sr


def parse_request(method, c):
    """(host, port, text) of the first proxy request in client bytes c, or
    None when c does not start with a request of that method."""
    try:
        if method in ("CONNECT", "POST", "GET"):
            first = c.split(b"\r\n", 1)[0].decode("latin-1")
            parts = first.split()
            if len(parts) < 2 or parts[0] != method:
                return None
            return None, None, first
        if method == "SOCKS5":
            n = 2 + c[1]
            if c[0] != 5 or c[n] != 5 or c[n + 1] != 1:
                return None
            atyp = c[n + 3]
            if atyp == 1:
                host, alen = str(ipaddress.ip_address(c[n + 4:n + 8])), 4
            elif atyp == 4:
                host, alen = str(ipaddress.ip_address(c[n + 4:n + 20])), 16
            else:
                host, alen = c[n + 5:n + 5 + c[n + 4]].decode("latin-1"), c[n + 4] + 1
            port = int.from_bytes(c[n + 4 + alen:n + 6 + alen], "big")
            return host, port, "SOCKS5 CONNECT %s port %d (ATYP %d)" % (host, port, atyp)
        if method in ("SOCKS4", "SOCKS4a"):
            if c[0] != 4 or c[1] != 1 or len(c) < 9:
                return None
            port = int.from_bytes(c[2:4], "big")
            ip = c[4:8]
            uend = c.find(b"\x00", 8)
            if method == "SOCKS4a":
                if ip[:3] != b"\x00\x00\x00" or ip[3] == 0 or uend < 0:
                    return None
                hend = c.find(b"\x00", uend + 1)
                host = c[uend + 1:hend].decode("latin-1")
                return host, port, "SOCKS4a CONNECT %s port %d (DSTIP %s, host name after USERID)" % (
                    host, port, ipaddress.ip_address(ip))
            host = str(ipaddress.ip_address(ip))
            return host, port, "SOCKS4 CONNECT %s port %d" % (host, port)
    except (IndexError, ValueError):
        return None
    return None


def reply_lines(server_bytes):
    """Final lines of SMTP replies (code + space)."""
    return [l for l in smtp_lines(server_bytes) if len(l) >= 4 and l[:3].isdigit() and l[3:4] == " "]


def server_frame_at(stream, offset):
    """The frame carrying the server's byte at `offset` of its payload, or None."""
    f = frame_at(stream, offset, False)
    return f[0] if f else None


def frame_at(stream, offset, from_client):
    """The frame (tuple) carrying byte `offset` of the client's (from_client)
    or the server's payload, or None."""
    seen = 0
    for f in stream.frames:
        if f[2] == from_client and f[4]:
            seen += len(f[4])
            if seen > offset:
                return f
    return None


def relay_reaction(rs):
    """How the MTA reacted on a relay leg that starts with an HTTP request
    line: `dropped` (one error reply after the greeting, then the MTA
    closed the connection), `rejected-lines` (error replies to the HTTP lines,
    then it went on answering what followed), `none` (no error reply).
    Returns (reaction, facts)."""
    replies = reply_lines(rs.s2c)
    after = replies[1:] if replies and replies[0].startswith("220") else replies
    fins = [(f[0], f[2]) for f in rs.frames if f[3] & 0x01]
    first_fin = fins[0] if fins else None
    errs = [l for l in after if l[:1] in ("4", "5") or l.startswith("221 2.7.0")]
    facts = {"mta_replies": len(after), "mta_first_reply": after[0] if after else None,
             "first_fin_frame": first_fin[0] if first_fin else None,
             "first_fin_by": (None if not first_fin else ("proxy" if first_fin[1] else "MTA"))}
    # frame of the MTA's first reply after its greeting
    greet = len(replies[0]) + 2 if replies and replies[0].startswith("220") else 0
    frame = server_frame_at(rs, greet)
    if frame is not None:
        facts["mta_reply_frame"] = frame
    if not errs:
        return "none", facts
    if len(after) == 1 and first_fin and not first_fin[1]:
        return "dropped", facts
    return "rejected-lines", facts


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def find_stream(streams, client, server):
    for s in streams.values():
        if s.client == client and s.server == server:
            return s
    return None


def discover_relays(labels, streams):
    """Fill incident['relay'] from the capture: the connection from the
    proxy to the resolved target that carries this incident's unique MAIL
    FROM (or, without SMTP, the only unclaimed connection to the target)."""
    claimed = set()
    for inc in labels["incidents"]:
        r = inc.get("relay")
        if r:
            s = find_stream(streams, r["client"], r["server"])
            if s:
                claimed.add(s.id)
    for inc in labels["incidents"]:
        if inc.get("relay") is not None or not inc.get("relay_expected"):
            continue
        if "relay" not in labels["legs_visible"]:
            continue
        pip = split_ep(inc["proxy"])[0]
        proxy_ips = {pip} | set(labels.get("proxy_addresses", []))
        target = ep(inc["target_resolved"], inc["target_port"])
        cands = [s for s in streams.values()
                 if s.server == target and split_ep(s.client)[0] in proxy_ips
                 and s.id not in claimed]
        if inc["mail_from"]:
            key = ("MAIL FROM:<%s>" % inc["mail_from"][0]).encode()
            with_key = [s for s in cands if key in s.c2s]
            if with_key or inc.get("relay_reaction") != "dropped":
                cands = with_key
            else:
                # the MTA closed before the SMTP commands reached it
                cands = in_window(cands, streams, inc)
        elif len(cands) > 1:
            cands = in_window(cands, streams, inc)
        if len(cands) != 1:
            raise CheckError("%s %s: %d relay candidates for %s" % (
                labels["case"], inc["id"], len(cands), target))
        claimed.add(cands[0].id)
        inc["relay"] = {"client": cands[0].client, "server": cands[0].server}
    for inc in labels["incidents"]:
        inc.pop("relay_expected", None)
    discover_hops(labels, streams)


def in_window(cands, streams, inc):
    """Connections that started while this incident's tunnel was open."""
    tun = find_stream(streams, inc["client"], inc["proxy"])
    if tun is None:
        return cands
    t0, t1 = tun.frames[0][1], tun.frames[-1][1]
    return [s for s in cands if t0 <= s.frames[0][1] <= t1]


def discover_hops(labels, streams):
    """Fill the client endpoint of every hop (proxy -> next proxy) from the
    capture: the connection from the hop's `client_ip` to its server whose
    bytes hold this incident's unique MAIL FROM."""
    claimed = set()
    for inc in labels["incidents"]:
        for h in inc.get("hops", []):
            if "client_ip" not in h:
                continue
            cands = [s for s in streams.values()
                     if s.server == h["server"] and split_ep(s.client)[0] == h["client_ip"]
                     and s.id not in claimed]
            if inc["mail_from"]:
                key = ("MAIL FROM:<%s>" % inc["mail_from"][0]).encode()
                cands = [s for s in cands if key in s.c2s]
            if len(cands) != 1:
                raise CheckError("%s %s: %d hop candidates %s -> %s" % (
                    labels["case"], inc["id"], len(cands), h["client_ip"], h["server"]))
            claimed.add(cands[0].id)
            h.pop("client_ip")
            rest = dict(h)
            h.clear()
            h["client"] = cands[0].client           # documented key order first
            for k in ("server", "method", "request_target"):
                h[k] = rest.pop(k)
            h.update(rest)


def check(labels, pcap):
    """Verify labels against the capture; returns per-incident frame facts."""
    streams, dnsrows = load(pcap)
    errors = []
    facts = {}
    expected = 0
    legs = labels["legs_visible"]
    # several incidents may share one tunnel connection (keep-alive: one
    # incident per request to a mail port, told apart by request_index);
    # each TCP stream is counted once
    tunnel_requests = set()

    def err(msg):
        errors.append("%s: %s" % (labels["case"], msg))

    for inc in labels["incidents"]:
        fx = facts[inc["id"]] = {}
        tun = None
        if "tunnel" in legs:
            tun = find_stream(streams, inc["client"], inc["proxy"])
            if tun is None:
                err("%s: no TCP conversation %s -> %s" % (inc["id"], inc["client"], inc["proxy"]))
                continue
            k = inc.get("request_index", 0)
            if (tun.id, k) in tunnel_requests:
                err("%s: another incident is request %d of stream %d too" % (inc["id"], k, tun.id))
            if not any(t[0] == tun.id for t in tunnel_requests):
                expected += 1
            tunnel_requests.add((tun.id, k))
            fx["tunnel_stream"] = tun.id
            fx["tunnel_syn"] = tun.syn
            req = tun.first_payload(True)
            fx["request_frame"] = req[0] if req else None
            if k and inc["method"] not in HTTP_METHODS:
                err("%s: request_index %d for a %s request" % (inc["id"], k, inc["method"]))
            if inc["method"] in HTTP_METHODS:
                # the request_index-th request on the connection and its answer
                exs = http_exchanges(tun)
                if len(exs) > 1:
                    fx["request_index"] = k
                    fx["exchanges"] = [{"line": e["line"], "status": e["status"],
                                        "request_frame": (frame_at(tun, e["req"], True) or [None])[0],
                                        "response_frame": (frame_at(tun, e["resp"], False) or [None])[0]
                                        if e["resp"] is not None else None} for e in exs]
                if k >= max(len(exs), 1):
                    err("%s: request_index %d, but stream %d carries %d request(s)" % (
                        inc["id"], k, tun.id, len(exs)))
                    continue
                c_off, s_off = (exs[k]["req"], exs[k]["resp"]) if k else (0, 0)
                req = frame_at(tun, c_off, True)
                fx["request_frame"] = req[0] if req else None
                first = tun.c2s[c_off:].split(b"\r\n", 1)[0].decode("latin-1")
                fx["request_line"] = first
                want = inc.get("first_request_target") or inc.get("request_uri") or inc["target"]
                if not first.startswith(inc["method"] + " " + want + " ") and \
                        not first.startswith(inc["method"] + " " + want):
                    err("%s: request line %r does not name %s %s" % (inc["id"], first, inc["method"], want))
                resp = frame_at(tun, s_off, False) if s_off is not None else None
                fx["response_frame"] = resp[0] if resp else None
                fx["response_time"] = resp[1] if resp else None
                sl = tun.s2c[s_off:].split(b"\r\n", 1)[0].decode("latin-1") if s_off is not None else ""
                fx["status_line"] = sl or None
                code = None
                m = re.match(r"HTTP/\d\.\d (\d{3})", sl)
                if m:
                    code = int(m.group(1))
                if code != inc["status_code"]:
                    err("%s: status %r in capture, labels say %r" % (inc["id"], code, inc["status_code"]))
            elif inc["method"] == "SOCKS5":
                pr = parse_request("SOCKS5", tun.c2s)
                if pr is None:
                    err("%s: no SOCKS5 CONNECT request" % inc["id"])
                else:
                    host, port, fx["request_line"] = pr
                    if host != inc["target_host"] or port != inc["target_port"]:
                        err("%s: SOCKS5 request for %s:%d, labels say %s" % (inc["id"], host, port, inc["target"]))
                code = tun.s2c[3] if len(tun.s2c) > 3 else None
                # frame of the SOCKS reply = 2nd proxy payload frame
                pf = [f for f in tun.frames if not f[2] and f[4]]
                fx["response_frame"] = pf[1][0] if len(pf) > 1 else None
                fx["response_time"] = pf[1][1] if len(pf) > 1 else None
                fx["status_line"] = "SOCKS5 reply REP=%s%s" % (code, " (succeeded)" if code == 0 else "")
                fx["request_frame"] = ([f for f in tun.frames if f[2] and f[4]] + [None, None])[1][0] \
                    if len([f for f in tun.frames if f[2] and f[4]]) > 1 else fx["request_frame"]
                if code != inc["status_code"]:
                    err("%s: SOCKS reply %r, labels say %r" % (inc["id"], code, inc["status_code"]))
            elif inc["method"] == "SOCKS4a":
                pr = parse_request("SOCKS4a", tun.c2s)
                if pr is None:
                    err("%s: no SOCKS4a CONNECT request" % inc["id"])
                else:
                    fx["request_line"] = pr[2]
                    if pr[0] != inc["target_host"] or pr[1] != inc["target_port"]:
                        err("%s: SOCKS4a request for %s:%d, labels say %s" % (inc["id"], pr[0], pr[1], inc["target"]))
                code = tun.s2c[1] if len(tun.s2c) > 1 else None
                r4 = tun.first_payload(False)
                fx["response_frame"] = r4[0] if r4 else None
                fx["response_time"] = r4[1] if r4 else None
                fx["status_line"] = "SOCKS4 reply CD=%s%s" % (code, " (request granted)" if code == 90 else "")
                if code != inc["status_code"]:
                    err("%s: SOCKS4 reply %r, labels say %r" % (inc["id"], code, inc["status_code"]))
            elif inc["method"] == "SOCKS4":
                c = tun.c2s
                if len(c) < 9 or c[0] != 4 or c[1] != 1:
                    err("%s: no SOCKS4 CONNECT request" % inc["id"])
                else:
                    port = int.from_bytes(c[2:4], "big")
                    host = str(ipaddress.ip_address(c[4:8]))
                    fx["request_line"] = "SOCKS4 CONNECT %s port %d" % (host, port)
                    if host != inc["target_host"] or port != inc["target_port"]:
                        err("%s: SOCKS4 request for %s:%d, labels say %s" % (inc["id"], host, port, inc["target"]))
                code = tun.s2c[1] if len(tun.s2c) > 1 else None
                r4 = tun.first_payload(False)
                fx["response_frame"] = r4[0] if r4 else None
                fx["response_time"] = r4[1] if r4 else None
                fx["status_line"] = "SOCKS4 reply CD=%s%s" % (code, " (request granted)" if code == 90 else "")
                if code != inc["status_code"]:
                    err("%s: SOCKS4 reply %r, labels say %r" % (inc["id"], code, inc["status_code"]))
            if inc["method"] not in ("POST", "GET"):
                c_in, s_in = tunnel_payload(inc, tun)
                if inc["smtp"]:
                    n_from = count_cmd(c_in, "MAIL FROM:")
                    n_rcpt = count_cmd(c_in, "RCPT TO:")
                    if n_from != len(inc["mail_from"]) or n_rcpt != len(inc["rcpt_to"]):
                        err("%s: tunnel has %d MAIL/%d RCPT, labels %d/%d" % (
                            inc["id"], n_from, n_rcpt, len(inc["mail_from"]), len(inc["rcpt_to"])))
                    # first SMTP line inside the tunnel (the relayed 220)
                    frame = server_frame_at(tun, len(tun.s2c) - len(s_in))
                    if frame is not None:
                        fx["first_smtp_frame"] = frame
                elif inc["status"] == "established" and count_cmd(c_in, "MAIL FROM:"):
                    err("%s: SMTP in tunnel but labels say smtp=false" % inc["id"])
        rel = inc.get("relay")
        if rel and "relay" in legs:
            rs = find_stream(streams, rel["client"], rel["server"])
            if rs is None:
                err("%s: relay %s -> %s not in capture" % (inc["id"], rel["client"], rel["server"]))
                continue
            expected += 1
            fx["relay_stream"] = rs.id
            fx["relay_syn"] = rs.syn
            fx["relay_syn_time"] = rs.frames[0][1]
            g = rs.first_payload(False)
            fx["relay_first_smtp_frame"] = g[0] if g else None
            if inc.get("relay_reaction"):
                reaction, rf = relay_reaction(rs)
                fx.update(rf)
                fx["relay_reaction"] = reaction
                if reaction != inc["relay_reaction"]:
                    err("%s: the MTA's reaction on the relay leg looks %r, labels say %r" % (
                        inc["id"], reaction, inc["relay_reaction"]))
            # a dropped relay may end before the SMTP commands reached the MTA
            body_missing = inc.get("relay_reaction") == "dropped" and not count_cmd(rs.c2s, "MAIL FROM:")
            fx["relay_body_reached_mta"] = None if not inc["smtp"] else not body_missing
            if inc["smtp"] and body_missing:
                acc = accepted_messages(rs.s2c)
                if acc != inc["messages"]:
                    err("%s: MTA accepted %d messages on the relay leg, labels say %d" % (inc["id"], acc, inc["messages"]))
            elif inc["smtp"]:
                n_from = args_of(rs.c2s, "MAIL FROM:")
                n_rcpt = args_of(rs.c2s, "RCPT TO:")
                if n_from != inc["mail_from"] or n_rcpt != inc["rcpt_to"]:
                    err("%s: relay MAIL %s RCPT %s, labels %s %s" % (
                        inc["id"], n_from, n_rcpt, inc["mail_from"], inc["rcpt_to"]))
                helo = [l.split(None, 1)[1] for l in smtp_lines(rs.c2s)
                        if l.upper().startswith(("EHLO ", "HELO "))]
                if inc["helo"] and inc["helo"] not in helo:
                    err("%s: relay HELO %s, labels %s" % (inc["id"], helo, inc["helo"]))
                acc = accepted_messages(rs.s2c)
                if acc != inc["messages"]:
                    err("%s: MTA accepted %d messages on the relay leg, labels say %d" % (inc["id"], acc, inc["messages"]))
        hops = inc.get("hops", [])
        for k, h in enumerate(hops):
            hs = find_stream(streams, h["client"], h["server"])
            if hs is None:
                err("%s: hop %d %s -> %s not in capture" % (inc["id"], k + 1, h["client"], h["server"]))
                continue
            expected += 1
            hf = {"stream": hs.id, "syn": hs.syn}
            fx.setdefault("hops", []).append(hf)
            req = hs.first_payload(True)
            hf["request_frame"] = req[0] if req else None
            pr = parse_request(h["method"], hs.c2s)
            if pr is None:
                err("%s: hop %d does not start with a %s request" % (inc["id"], k + 1, h["method"]))
                continue
            hf["request_line"] = pr[2]
            if h["method"] in ("CONNECT", "POST", "GET"):
                if (pr[2] + " ").split(" ")[:2] != [h["method"], h["request_target"]]:
                    err("%s: hop %d request line %r does not name %s %s" % (
                        inc["id"], k + 1, pr[2], h["method"], h["request_target"]))
                sl = hs.s2c.split(b"\r\n", 1)[0].decode("latin-1")
                hf["status_line"] = sl or None
            elif (ep(pr[0], pr[1]) if _is_ip(pr[0]) else "%s:%d" % (pr[0], pr[1])) != h["request_target"]:
                err("%s: hop %d %s request for %s:%d, labels say %s" % (
                    inc["id"], k + 1, h["method"], pr[0], pr[1], h["request_target"]))
            if h["method"] == "SOCKS5":
                hf["status_line"] = "SOCKS5 reply REP=%s" % (hs.s2c[3] if len(hs.s2c) > 3 else None)
            resp = hs.first_payload(False)
            hf["response_frame"] = resp[0] if resp else None
            if inc["smtp"]:
                later = hops[k + 1:] if inc.get("chain") == "client" else []
                c_in, _ = tunnel_payload({"method": h["method"]}, hs, hops=later)
                got = args_of(c_in, "MAIL FROM:")
                if got != inc["mail_from"]:
                    err("%s: hop %d carries MAIL FROM %s, labels %s" % (inc["id"], k + 1, got, inc["mail_from"]))
    for b in labels["benign"]:
        s = find_stream(streams, b["client"], b["server"])
        if s is None:
            err("benign %s %s -> %s not in capture" % (b["kind"], b["client"], b["server"]))
        else:
            expected += 1
    for b in labels.get("benign_relays", []):
        s = find_stream(streams, b["client"], b["server"])
        if s is None:
            err("benign relay %s -> %s not in capture" % (b["client"], b["server"]))
        else:
            expected += 1
    if len(streams) != expected:
        known = set()
        for inc in labels["incidents"]:
            known.add((inc["client"], inc["proxy"]))
            if inc.get("relay"):
                known.add((inc["relay"]["client"], inc["relay"]["server"]))
            for h in inc.get("hops", []):
                known.add((h["client"], h["server"]))
        for b in labels["benign"] + labels.get("benign_relays", []):
            known.add((b["client"], b["server"]))
        extra = [repr(s) for s in streams.values() if (s.client, s.server) not in known]
        err("capture has %d TCP streams, labels account for %d; unlabelled: %s" % (
            len(streams), expected, extra))
    for name in labels.get("dns_names", []):
        if not any(r[2] == name for r in dnsrows if len(r) > 2):
            err("no DNS query for %s in capture" % name)
    return streams, dnsrows, facts, errors


def discover_benign_relays(labels, streams):
    """Proxy -> origin connections made for benign requests: every stream
    from the proxy that no incident claims."""
    proxy_ips = set(labels.get("proxy_addresses", []))
    claimed = set()
    for inc in labels["incidents"]:
        if inc.get("relay"):
            claimed.add((inc["relay"]["client"], inc["relay"]["server"]))
    for b in labels["benign"]:
        claimed.add((b["client"], b["server"]))
    out = []
    for s in sorted(streams.values(), key=lambda s: s.id):
        if (s.client, s.server) in claimed:
            continue
        if split_ep(s.client)[0] in proxy_ips:
            out.append({"client": s.client, "server": s.server})
    return out


def write_md(labels, meta, streams, dnsrows, facts, path):
    L = []
    L.append("# %s\n" % labels["case"])
    L.append("## Purpose\n\n%s\n" % meta["purpose"])
    L.append("## How it was made\n")
    point = labels["capture_point"]
    if point == "router":
        point = ("router: `tcpdump -i any -Q in` in the router namespace, so every packet between two "
                 "hosts is recorded once, as it enters the router, on every link (link type Linux SLL2)")
    L.append("Generated by `%s` (run as root on Debian 12): network namespaces "
             "joined by a router namespace, real programs inside them, "
             "tcpdump (full snaplen, pcap) on the %s.\n" % (labels["made_by"], point))
    L.append("Software:\n")
    for s in meta["software"]:
        L.append("- %s" % s)
    L.append("\nClient commands run (in order; the lab's temporary directory shown as `$WORK`):\n")
    L.append("```")
    for c in meta["commands"]:
        L.append(c)
    L.append("```\n")
    for n in meta.get("observations", []):
        L.append("- " + n)
    if meta.get("observations"):
        L.append("")
    L.append("## The important sequence\n")
    L.append("Capture: `%s`, %d TCP streams, legs visible: %s.\n" % (
        labels["capture"], len(streams), ", ".join(labels["legs_visible"])))
    if dnsrows:
        L.append("DNS frames: " + "; ".join(
            "frame %s %s %s%s" % (r[0], "answer" if r[1] in ("1", "True") else "query",
                                   r[2], (" -> " + (r[4] or r[5])) if len(r) > 5 and (r[4] or r[5]) else "")
            for r in dnsrows[:8]) + ("" if len(dnsrows) <= 8 else " …") + "\n")
    for inc in labels["incidents"]:
        fx = facts.get(inc["id"], {})
        L.append("### %s: %s %s via %s (%s)\n" % (inc["id"], inc["method"], inc["target"],
                                                 inc["proxy"], inc["proxy_software"]))
        rows = [
            ("client", inc["client"]),
            ("tunnel tcp.stream", fx.get("tunnel_stream")),
            ("tunnel SYN frame", fx.get("tunnel_syn")),
            ("request frame", fx.get("request_frame")),
            ("request line", "`%s`" % fx["request_line"] if fx.get("request_line") else None),
            ("requests on this connection", ("%d; this incident is request_index %d. %s" % (
                len(fx["exchanges"]), fx["request_index"], "; ".join(
                    "[%d] frame %s `%s`, answer frame %s `%s`" % (
                        j, e["request_frame"], e["line"], e["response_frame"], e["status"])
                    for j, e in enumerate(fx["exchanges"]))))
             if fx.get("exchanges") else None),
            ("proxy answer frame", fx.get("response_frame")),
            ("proxy answer", "`%s`" % fx["status_line"] if fx.get("status_line") else inc["status_code"]),
        ]
        if inc.get("first_request_target") and inc["first_request_target"] != inc["target"]:
            rows.append(("first request asks for", "`%s` (the next proxy); the mail target `%s` is "
                         "requested inside the tunnel" % (inc["first_request_target"], inc["target"])))
        for k, (h, hf) in enumerate(zip(inc.get("hops", []), fx.get("hops", []))):
            rows.append(("hop %d (%s -> %s)" % (k + 1, h["client"], h["server"]),
                         "tcp.stream %s, SYN frame %s, request frame %s `%s`, answer frame %s%s" % (
                             hf["stream"], hf["syn"], hf["request_frame"], hf.get("request_line"),
                             hf.get("response_frame"),
                             (" `%s`" % hf["status_line"]) if hf.get("status_line") else "")))
        rows += [
            ("relay tcp.stream", fx.get("relay_stream")),
            ("relay SYN frame", fx.get("relay_syn")),
            ("relay SYN vs proxy answer", ("relay SYN %.3f ms %s the answer" % (
                abs(fx["response_time"] - fx["relay_syn_time"]) * 1000,
                "before" if fx["relay_syn_time"] <= fx["response_time"] else "after"))
             if fx.get("response_time") is not None and fx.get("relay_syn_time") is not None else None),
            ("relay: first MTA line frame", fx.get("relay_first_smtp_frame")),
            ("tunnel: first SMTP line frame", fx.get("first_smtp_frame")),
            ("relay: MTA reaction", ("`%s`: first reply after the greeting (frame %s) `%s`; %d repl%s after "
                                     "the greeting; first FIN sent by the %s (frame %s)%s" % (
                                         fx["relay_reaction"], fx.get("mta_reply_frame"), fx["mta_first_reply"],
                                         fx["mta_replies"], "y" if fx["mta_replies"] == 1 else "ies",
                                         fx["first_fin_by"], fx["first_fin_frame"],
                                         {None: "", True: "; the body's SMTP commands were sent to the MTA "
                                                           "but never answered",
                                          False: "; the body's SMTP commands never reached the MTA"}[
                                             fx.get("relay_body_reached_mta")]))
             if fx.get("relay_reaction") else None),
            ("envelope", "HELO %s, MAIL FROM %s, RCPT TO %s, messages %d" % (
                inc["helo"], ",".join(inc["mail_from"]), ",".join(inc["rcpt_to"]), inc["messages"])
             if inc["smtp"] else None),
        ]
        for k, v in rows:
            if v is not None:
                L.append("- %s: %s" % (k, v))
        L.append("")
    if labels["benign"]:
        L.append("Benign connections (%d):\n" % len(labels["benign"]))
        for b in labels["benign"]:
            L.append("- %s %s -> %s%s" % (b["kind"], b["client"], b["server"],
                                          (" (" + b["note"] + ")") if b.get("note") else ""))
        L.append("")
    L.append("## What a detector should report\n")
    flagged = [i for i in labels["incidents"] if i.get("expected_flag", True)]
    if not flagged:
        L.append("Nothing: no `smtp-over-http` frame, no expert item.\n")
    for inc in flagged:
        fx = facts.get(inc["id"], {})
        leg = "attempt" if inc["status"] != "established" else "tunnel"
        s = ("- %s: leg `%s`, method `%s`, target.host `%s`, target.port %d, status `%s`, smtp %s"
             % (inc["id"], leg, inc["method"], inc["target_host"], inc["target_port"],
                inc["status"], "true" if inc["smtp"] else "false"))
        if "tunnel_stream" in fx:
            s += ", tunnel.stream %d" % fx["tunnel_stream"]
        if fx.get("exchanges"):
            s += " (request_index %d: request frame %s, answer frame %s)" % (
                fx["request_index"], fx.get("request_frame"), fx.get("response_frame"))
        if "relay_stream" in fx and "tunnel_stream" in fx:
            if inc["status"] == "established":
                s += ", relay.stream %d (the relay leg is flagged too)" % fx["relay_stream"]
            else:
                s += "; the proxy's failed attempt to reach the target is tcp.stream %d" % fx["relay_stream"]
        for h, hf in zip(inc.get("hops", []), fx.get("hops", [])):
            s += ", hop tcp.stream %d (%s %s from %s)" % (hf["stream"], h["method"], h["request_target"],
                                                         h["client"])
        if inc["smtp"]:
            s += ", helo `%s`, mail_from %s, rcpt_count %d, messages %d" % (
                inc["helo"], inc["mail_from"], len(inc["rcpt_to"]), inc["messages"])
        if inc.get("relay_reaction"):
            s += ", relay_reaction `%s`" % inc["relay_reaction"]
        L.append(s)
    for inc in labels["incidents"]:
        if not inc.get("expected_flag", True):
            L.append("- %s is not expected to be flagged: %s" % (inc["id"], inc.get("note", "")))
    if labels["benign"]:
        L.append("- the benign connections listed above carry no `smtp-over-http`.")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def main(argv):
    if len(argv) < 2 or argv[0] != "check":
        print(__doc__)
        return 2
    bad = 0
    for lf in argv[1:]:
        with open(lf) as f:
            labels = json.load(f)
        pcap = os.path.join(os.path.dirname(lf), labels["capture"])
        try:
            _, _, _, errors = check(labels, pcap)
        except CheckError as e:
            errors = [str(e)]
        for e in errors:
            print("FAIL", e)
        bad += bool(errors)
        if not errors:
            print("ok  ", labels["case"], "(%d incidents, %d benign)" % (
                len(labels["incidents"]), len(labels["benign"])))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
