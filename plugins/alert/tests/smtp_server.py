#!/usr/bin/env python3
"""A real SMTP server on 127.0.0.1 for email_sink's test (aiosmtpd): STARTTLS required, AUTH
PLAIN/LOGIN with one user. Each message received is parsed with Python's email package and
appended as one JSON line to <out>: envelope, headers, defects, body.

Usage: smtp_server.py <workdir> <user> <password>
Writes <workdir>/port when it listens, <workdir>/messages.jsonl per message; runs until killed.
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

workdir, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
cert = os.path.join(workdir, "smtp.pem")
key = os.path.join(workdir, "smtp.key")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated": session.authenticated,
            "tls": session.ssl is not None,
            "headers": {k: str(v) for k, v in msg.items()},
            "defects": [str(d) for d in msg.defects],
            "content_type": msg.get_content_type(),
            "body": body.get_content() if body is not None else "",
        }
        with open(os.path.join(workdir, "messages.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == user and auth_data.password.decode() == password
    return AuthResult(success=ok)


with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context,
                        require_starttls=True, authenticator=authenticator,
                        auth_require_tls=True)
controller.start()
with open(os.path.join(workdir, "port.tmp"), "w") as f:
    f.write(str(port))
os.rename(os.path.join(workdir, "port.tmp"), os.path.join(workdir, "port"))
while True:
    time.sleep(3600)
