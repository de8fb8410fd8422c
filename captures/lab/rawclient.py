#!/usr/bin/python3
"""Raw proxy client for the lab: sends a request exactly as given (so malformed
spamware-style requests and absolute-URI POSTs can be reproduced), reads the
proxy's answer and, when asked and the proxy said 2xx, speaks SMTP in the
tunnel.  Prints one JSON object describing what happened.

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

    def send(self, data):
        self.sock.sendall(data)


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
    ap.add_argument("--request", required=True,
                    help="request bytes, Python escapes allowed (\\r\\n)")
    ap.add_argument("--smtp", nargs=3, metavar=("HELO", "FROM", "RCPTS"),
                    help="speak SMTP after a 2xx (RCPTS comma separated)")
    ap.add_argument("--read-all", action="store_true",
                    help="read the answer until the proxy closes")
    ap.add_argument("--timeout", type=float, default=8.0)
    a = ap.parse_args()

    req = a.request.encode("latin-1").decode("unicode_escape").encode("latin-1")
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
        s.sendall(req)
        conn = Conn(s)
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


if __name__ == "__main__":
    main()
