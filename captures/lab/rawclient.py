#!/usr/bin/python3
"""Raw proxy client for the lab: sends a request exactly as given (so malformed
spamware-style requests and absolute-URI POSTs can be reproduced), reads the
proxy's answer and, when asked and the proxy said 2xx, speaks SMTP in the
tunnel.  Prints one JSON object describing what happened.

With --request given several times, the requests go out one after another on
the same connection (HTTP keep-alive): each answer is read in full (header,
then a Content-Length or chunked body; none after a 2xx to CONNECT) before
the next request is sent.  The SMTP dialogue, when asked, follows a 2xx to
the last request.

Standard library only.  Every socket operation has a timeout.
"""
import argparse
import json
import socket
import sys
import time


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Conn:
    """Socket with a read buffer, so bytes that arrive together with the
    proxy's answer (an MTA greeting right behind a 200) are not lost."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(4096)
        except socket.timeout:
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def until(self, marker, timeout=5.0, limit=65536):
        """Bytes up to and including marker (or all there is)."""
        deadline = time.monotonic() + timeout
        while marker not in self.buf and len(self.buf) < limit:
            if not self.fill(deadline):
                break
        i = self.buf.find(marker)
        if i < 0:
            out, self.buf = self.buf, b""
        else:
            out, self.buf = self.buf[:i + len(marker)], self.buf[i + len(marker):]
        return out

    def all(self, timeout):
        deadline = time.monotonic() + timeout
        while self.fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def reply(self, timeout=5.0):
        """One (possibly multi-line) SMTP reply."""
        out = b""
        while True:
            line = self.until(b"\r\n", timeout)
            out += line
            if not line.endswith(b"\r\n") or (len(line) >= 4 and line[3:4] == b" "):
                return out

    def exact(self, n, timeout):
        """Exactly n bytes (or all there is before the deadline)."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if not self.fill(deadline):
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.sock.sendall(data)


def header_fields(head):
    """Lower-cased header names -> last value, from a message header."""
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            out[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return out


def read_response(conn, method, timeout):
    """One complete HTTP response: (header bytes, body bytes, closed).  The
    body is delimited as RFC 9112 section 6.3 says: none for a 2xx to CONNECT,
    to HEAD, or a 1xx/204/304; chunked; Content-Length; else until the peer
    closes (closed is then True)."""
    head = conn.until(b"\r\n\r\n", timeout=timeout)
    if not head.endswith(b"\r\n\r\n"):
        return head, b"", True
    parts = head.split(b"\r\n", 1)[0].split()
    code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    h = header_fields(head)
    if (method == "CONNECT" and 200 <= code < 300) or method == "HEAD" or code < 200 or code in (204, 304):
        return head, b"", False
    if "chunked" in h.get("transfer-encoding", "").lower():
        body = b""
        while True:
            line = conn.until(b"\r\n", timeout)
            body += line
            try:
                size = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                return head, body, True
            if size == 0:
                while True:                      # trailers up to the empty line
                    t = conn.until(b"\r\n", timeout)
                    body += t
                    if t in (b"\r\n", b""):
                        return head, body, t == b""
            chunk = conn.exact(size + 2, timeout)
            body += chunk
            if len(chunk) < size + 2:
                return head, body, True
    if "content-length" in h:
        n = int(h["content-length"])
        body = conn.exact(n, timeout)
        return head, body, len(body) < n
    return head, conn.all(timeout), True


def smtp(conn, helo, mail_from, rcpts, out):
    transcript = []
    out["smtp_transcript"] = transcript
    greet = conn.reply()
    transcript.append(greet.decode("latin-1"))
    if not greet.startswith(b"220"):
        return 0
    messages = 0

    def cmd(line):
        conn.send(line.encode() + b"\r\n")
        transcript.append(line)
        rep = conn.reply()
        transcript.append(rep.decode("latin-1"))
        return rep

    cmd("EHLO " + helo)
    if cmd("MAIL FROM:<%s>" % mail_from)[:1] == b"2":
        ok = 0
        for r in rcpts:
            if cmd("RCPT TO:<%s>" % r)[:1] == b"2":
                ok += 1
        if ok and cmd("DATA")[:3] == b"354":
            body = ("From: <%s>\r\nTo: <%s>\r\nSubject: offer\r\n\r\n"
                    "cheap watches\r\n.") % (mail_from, rcpts[0])
            if cmd(body)[:1] == b"2":
                messages += 1
    cmd("QUIT")
    return messages


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True, help="local ip:port")
    ap.add_argument("--connect", required=True, help="proxy ip:port")
    ap.add_argument("--request", required=True, action="append",
                    help="request bytes, Python escapes allowed (\\r\\n); give it several "
                         "times to send several requests on one connection")
    ap.add_argument("--smtp", nargs=3, metavar=("HELO", "FROM", "RCPTS"),
                    help="speak SMTP after a 2xx (RCPTS comma separated)")
    ap.add_argument("--read-all", action="store_true",
                    help="read the answer until the proxy closes")
    ap.add_argument("--timeout", type=float, default=8.0)
    a = ap.parse_args()

    reqs = [r.encode("latin-1").decode("unicode_escape").encode("latin-1") for r in a.request]
    lhost, lport = endpoint(a.bind)
    rhost, rport = endpoint(a.connect)
    fam = socket.AF_INET6 if ":" in rhost else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((lhost, lport))
    s.settimeout(a.timeout)
    out = {"status_line": None, "status_code": None, "messages": 0}
    try:
        s.connect((rhost, rport))
        conn = Conn(s)
        if len(reqs) > 1:
            sequence(conn, reqs, a, out)
            return
        s.sendall(reqs[0])
        if a.read_all:
            resp = conn.all(a.timeout)
        else:
            resp = conn.until(b"\r\n\r\n", timeout=a.timeout)
        out["response"] = resp.decode("latin-1")
        first = resp.split(b"\r\n", 1)[0].decode("latin-1")
        if first:
            out["status_line"] = first
            parts = first.split()
            if len(parts) >= 2 and parts[1].isdigit():
                out["status_code"] = int(parts[1])
        if a.smtp and out["status_code"] and 200 <= out["status_code"] < 300:
            helo, mfrom, rcpts = a.smtp
            out["messages"] = smtp(conn, helo, mfrom, rcpts.split(","), out)
    except OSError as e:
        out["error"] = str(e)
    finally:
        s.close()
        json.dump(out, sys.stdout)
        print()


def sequence(conn, reqs, a, out):
    """Several requests on one connection, each answer read in full before
    the next request; out["exchanges"] lists them, status_line/status_code
    are the last answer's.  Stops early when the proxy closes the connection
    or opens a tunnel before the last request."""
    out["exchanges"] = []
    for k, req in enumerate(reqs):
        line = req.split(b"\r\n", 1)[0].decode("latin-1")
        method = line.split(" ", 1)[0]
        conn.send(req)
        head, body, closed = read_response(conn, method, a.timeout)
        first = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = first.split()
        code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
        h = header_fields(head)
        out["exchanges"].append({"request_line": line, "status_line": first or None, "status_code": code,
                                 "connection": h.get("connection"), "body_bytes": len(body),
                                 "proxy_closed": closed})
        out["status_line"], out["status_code"] = first or None, code
        out["response"] = head.decode("latin-1")
        tunnel = method == "CONNECT" and code is not None and 200 <= code < 300
        if closed or code is None or (tunnel and k < len(reqs) - 1):
            return
    if a.smtp and out["status_code"] and 200 <= out["status_code"] < 300:
        helo, mfrom, rcpts = a.smtp
        out["messages"] = smtp(conn, helo, mfrom, rcpts.split(","), out)


if __name__ == "__main__":
    main()
