"""A real SMTP server (aiosmtpd) for the email channel's tests.

Two ways in:

* as aiosmtpd's own command line, with the sink below as the handler:
      PYTHONPATH=<this dir> python -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_server.Sink OUTDIR
* as a script, for TLS and AUTH:
      python smtp_server.py MODE PORT OUTDIR CERT KEY USER PASSWORD
  MODE is `starttls` (STARTTLS required, AUTH only after it),
  `starttls-login` (the same without AUTH PLAIN, so that clients fall back
  to LOGIN) or `implicit` (TLS from the first byte). It prints `ready`
  once it listens and runs until killed.

Every message received is written to OUTDIR as NNNN.eml (the content as
received, after the server removed the dot-stuffing) and NNNN.json (the
envelope, the session's TLS and AUTH state, and the message as Python's
email parser reads it: headers decoded and unfolded, body decoded). The
.json file appears last, atomically.
"""

import email
import email.policy
import json
import os
import ssl
import sys
import threading


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("smtp_server.Sink takes one argument: the output directory")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            base = os.path.join(self.directory, "%04d" % self.count)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        try:
            body = message.get_content()
        except Exception as e:  # an undecodable body is a test failure, not a crash
            body = "UNDECODABLE: %r" % (e,)
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        info = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated": bool(session.authenticated),
            "auth_user": session.auth_data if isinstance(session.auth_data, str) else None,
            "tls_version": ssl_object.version() if ssl_object is not None else None,
            "headers": [[k, str(v)] for k, v in message.items()],
            "body": body,
            "defects": [repr(d) for d in message.defects],
        }
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        with open(base + ".json.tmp", "w") as f:
            json.dump(info, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 Message accepted for delivery"


def main():
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    mode, port, directory, cert, key, user, password = sys.argv[1:8]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: aiosmtpd sends the 235 or 535 reply itself.
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    handler = Sink(directory)
    common = dict(hostname="127.0.0.1", port=int(port), authenticator=authenticator)
    if mode == "starttls":
        controller = Controller(
            handler, tls_context=context, require_starttls=True, auth_require_tls=True, **common
        )
    elif mode == "starttls-login":
        controller = Controller(
            handler,
            tls_context=context,
            require_starttls=True,
            auth_require_tls=True,
            auth_exclude_mechanism=["PLAIN"],
            **common,
        )
    elif mode == "implicit":
        # The whole connection is TLS: aiosmtpd's auth_require_tls only
        # knows STARTTLS, so it is off here.
        controller = Controller(handler, ssl_context=context, auth_require_tls=False, **common)
    else:
        sys.exit("unknown mode %r" % mode)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
