#!/usr/bin/env python3
"""A real SMTP server for tests: accepts every message and writes it to a folder.

    python3 tests/smtp_sink.py [--port PORT] --dir DIR [--hang-on data|quit]
                                [--tls starttls|implicit --certs CERTDIR]

Each message accepted becomes DIR/NNNN.eml (the bytes as received) and
DIR/NNNN.rcpt (MAIL FROM on the first line, one RCPT TO per following line).
Files are written under a temporary name and renamed, so a reader never sees a
half-written message. Prints "ready PORT" on stdout once listening (with
--port 0, the default, the OS picks the port: no race with other tests for a
"free" one); stops on
SIGTERM/SIGINT. Recipients whose local part starts with "reject" are refused
with 550, to simulate one bad mailbox.

--hang-on simulates a server that stops answering at one step, to test what a
kill at that moment does:
  data  receive the message body, write DIR/NNNN.data (not .eml), never reply;
  quit  accept messages normally, then on QUIT write DIR/NNNN.quit, never reply.

--ack-after SECS simulates a slow relay: each message is written (DIR/NNNN.eml,
so it counts as delivered) and only then, SECS seconds later, acknowledged.
Needs `pip install aiosmtpd`.

With --tls, the server speaks TLS with a certificate from a private CA made
at start-up (python `cryptography`, `pip install cryptography`): CERTDIR/ca.pem
is the CA a client must trust (written before "ready"), the server certificate
is for `localhost` and `127.0.0.1`. `starttls` offers and *requires* STARTTLS
before MAIL; `implicit` speaks TLS from the first byte (as on port 465).
"""

import argparse
import asyncio
import datetime
import itertools
import os
import signal
import ssl
import sys

from aiosmtpd import controller as aiosmtpd_controller


class Controller(aiosmtpd_controller.Controller):
    """aiosmtpd's controller, on port 0 too: it learns the port the OS gave
    before it connects to its own server to check that it is up."""

    def _trigger_server(self):
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Sink:
    def __init__(self, folder, hang_on=None, ack_after=0.0):
        self.folder = folder
        self.hang_on = hang_on
        self.ack_after = ack_after
        self.counter = itertools.count(1)
        self.quits = itertools.count(1)

    def _write(self, name, data):
        tmp = os.path.join(self.folder, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(self.folder, name))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Lets tests simulate a server that refuses one mailbox.
        if address.split("@")[0].startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        if self.hang_on == "data":
            self._write(f"{n:04d}.data", envelope.original_content or envelope.content)
            await asyncio.sleep(3600)
        rcpt = "\n".join([envelope.mail_from or ""] + list(envelope.rcpt_tos)) + "\n"
        self._write(f"{n:04d}.rcpt", rcpt.encode())
        # The .eml last: its presence means the message is complete.
        self._write(f"{n:04d}.eml", envelope.original_content or envelope.content)
        if self.ack_after:
            await asyncio.sleep(self.ack_after)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        if self.hang_on == "quit":
            self._write(f"{next(self.quits):04d}.quit", b"")
            await asyncio.sleep(3600)
        return "221 Bye"


def make_certs(folder):
    """A throwaway CA and a server certificate it signed; returns (ca, cert, key) paths."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("callout test CA"))
        .issuer_name(name("callout test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, n) for n in ("ca.pem", "server.pem", "server.key")]
    pem = serialization.Encoding.PEM
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths[1], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths[2], "wb") as f:
        f.write(
            key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return paths


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--dir", required=True)
    p.add_argument("--hang-on", choices=["data", "quit"])
    p.add_argument("--ack-after", type=float, default=0.0)
    p.add_argument("--tls", choices=["starttls", "implicit"])
    p.add_argument("--certs", help="where ca.pem and the server's key go (with --tls)")
    args = p.parse_args()
    if args.tls and not args.certs:
        p.error("--tls needs --certs DIR")
    os.makedirs(args.dir, exist_ok=True)
    tls = {}
    if args.tls:
        _ca, cert, key = make_certs(args.certs)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        if args.tls == "starttls":
            tls = dict(tls_context=context, require_starttls=True)
        else:
            tls = dict(ssl_context=context)
    controller = Controller(Sink(args.dir, args.hang_on, args.ack_after), hostname=args.host, port=args.port, **tls)
    controller.start()
    print(f"ready {controller.port}", flush=True)

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
