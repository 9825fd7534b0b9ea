"""Cowrie output `honeybee`: every event as one JSON line to the HoneyBee
agent's event socket (HONEYBEE_EVENT_ADDR).

Like Cowrie's own socketlog, plus what the agent requires (docs/protocol.md
section 8): each connection opens with the line {"token": ...} holding the
pot's HONEYBEE_POT_TOKEN, and a connection the agent closed (it closes idle
ones) is noticed before writing, so no event goes into a dead socket.
The install script copies this file to cowrie/output/honeybee.py in the venv.
The token is never logged or written anywhere.
"""

import json
import os
import select
import socket

import cowrie.core.output


class Output(cowrie.core.output.Output):
    def start(self):
        addr = os.environ.get("HONEYBEE_EVENT_ADDR", "127.0.0.1:9100")
        host, _, port = addr.rpartition(":")
        self.addr = (host, int(port))
        token = os.environ.get("HONEYBEE_POT_TOKEN", "")
        self.hello = (json.dumps({"token": token}) + "\n").encode()
        self.sock = None

    def stop(self):
        self._close()

    def _close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _alive(self):
        # The agent never writes to a pot: a readable socket is one it closed.
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def write(self, event):
        for key in list(event.keys()):
            # Twisted's own keys, as socketlog drops them.
            if key.startswith("log_"):
                del event[key]
        line = (json.dumps(event) + "\n").encode()
        for _ in range(2):
            try:
                if self.sock is None or not self._alive():
                    self._close()
                    self.sock = socket.create_connection(self.addr, timeout=5)
                    self.sock.sendall(self.hello)
                self.sock.sendall(line)
                return
            except OSError:
                self._close()
