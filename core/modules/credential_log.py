#!/usr/bin/env python3
"""HoneyBee example module: append every login attempt to a CSV file.

Run by the core as a `[[modules]]` entry (see README.md). It connects to the
core's stream port (HONEYBEE_STREAM_ADDR), registers with the API token
(HONEYBEE_API_TOKEN), subscribes to live events, and appends one row per event
that carries a username or password:

    time,node_id,pot_id,src_ip,username,password

Settings (environment):
    HONEYBEE_CREDENTIAL_CSV   the CSV file (default ./credentials.csv),
                              created mode 0600

If the core goes away it reconnects with a backoff of 1 s doubling to 30 s.
It exits when its parent (the core) is gone. Python 3 standard library only.
"""

import csv
import json
import os
import signal
import socket
import sys
import time

COLUMNS = ["time", "node_id", "pot_id", "src_ip", "username", "password"]
MAX_LINE = 1024 * 1024 + 1


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def envelope(message):
    return (json.dumps({"version": 2, "message": message}) + "\n").encode()


def row_of(event):
    """The CSV row for a PotEvent payload, or None without credentials."""
    data = event.get("data") or {}
    username = data.get("username")
    password = data.get("password")
    if username is None and password is None:
        return None
    return [
        event.get("timestamp", ""),
        event.get("node_id", ""),
        event.get("pot_id", ""),
        data.get("src_ip", ""),
        "" if username is None else str(username),
        "" if password is None else str(password),
    ]


class CsvLog:
    def __init__(self, path):
        self.path = path

    def append(self, row):
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            if new:
                w.writerow(COLUMNS)
            w.writerow(row)


def first_response(reader):
    """Reads lines until a BackendResponse; returns its payload."""
    while True:
        line = reader.readline(MAX_LINE)
        if not line:
            raise ConnectionError("core closed the connection")
        msg = json.loads(line).get("message", {})
        if isinstance(msg, dict) and "BackendResponse" in msg:
            return msg["BackendResponse"]


def session(addr, token, out):
    """One connection: register, subscribe, write rows until it closes."""
    host, port = parse_addr(addr)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.settimeout(None)
        reader = sock.makefile("rb")
        sock.sendall(envelope({"BackendRegistration": {
            "backend_name": "credential_log",
            "backend_type": {"Custom": "credential_log"},
            "token": token,
        }}))
        answer = first_response(reader)
        if "Success" not in answer:
            raise PermissionError("registration refused: %r" % (answer,))
        sock.sendall(envelope({"BackendCommand": {"Subscribe": {"topics": ["events"]}}}))
        answer = first_response(reader)
        if "Success" not in answer:
            raise ConnectionError("subscribe refused: %r" % (answer,))
        log("credential_log: subscribed to %s, writing %s" % (addr, out.path))
        while True:
            line = reader.readline(MAX_LINE)
            if not line:
                raise ConnectionError("core closed the connection")
            try:
                msg = json.loads(line).get("message", {})
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if "PotEvent" in msg:
                row = row_of(msg["PotEvent"])
                if row is not None:
                    out.append(row)
            elif "BackendResponse" in msg:
                log("credential_log: core says %r" % (msg["BackendResponse"],))


def main():
    addr = os.environ.get("HONEYBEE_STREAM_ADDR", "127.0.0.1:9003")
    token = os.environ.get("HONEYBEE_API_TOKEN", "")
    out = CsvLog(os.environ.get("HONEYBEE_CREDENTIAL_CSV", "credentials.csv"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.umask(0o077)  # the file holds the passwords attackers tried
    parent = os.getppid()
    backoff = 1.0
    while True:
        started = time.monotonic()
        try:
            session(addr, token, out)
        except (OSError, ValueError, ConnectionError) as e:
            log("credential_log: %s" % (e,))
        if os.getppid() != parent:
            log("credential_log: the core is gone; exiting")
            return 0
        if time.monotonic() - started > 60:
            backoff = 1.0
        time.sleep(backoff)
        backoff = min(backoff * 2, 30.0)


if __name__ == "__main__":
    sys.exit(main())
