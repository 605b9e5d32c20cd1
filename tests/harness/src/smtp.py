"""A real SMTP server for the tests: aiosmtpd, STARTTLS required before AUTH
(PLAIN/LOGIN with one user) and before any mail. Each mail is written to OUT as
NNNN.eml, headed by what the session proved: TLS, the authenticated login and
the envelope. Prints "ready PORT" once it accepts connections; stops when
stdin closes (the test ends).

usage: smtp.py CERT KEY OUT USER PASSWORD PORT"""
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

cert, key, out, user, password, port = sys.argv[1:]


class Handler:
    async def handle_DATA(self, server, session, envelope):
        n = len([f for f in os.listdir(out) if f.endswith(".eml")])
        path = os.path.join(out, "%04d.eml" % n)
        login = session.auth_data.login.decode() if session.authenticated else "-"
        head = "X-Test-TLS: %s\r\nX-Test-Login: %s\r\nX-Test-Envelope: %s -> %s\r\n" % (
            "yes" if session.ssl else "no",
            login,
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
        )
        with open(path + ".tmp", "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    return AuthResult(success=ok, auth_data=auth_data)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=True,
)
controller.start()
print("ready", port, flush=True)
sys.stdin.read()
controller.stop()
