#!/usr/bin/env python3
"""A real SMTP server for tests: accepts every message and writes it to a folder.

    python3 tests/smtp_sink.py --port PORT --dir DIR [--hang-on data|quit]

Each message accepted becomes DIR/NNNN.eml (the bytes as received) and
DIR/NNNN.rcpt (MAIL FROM on the first line, one RCPT TO per following line).
Files are written under a temporary name and renamed, so a reader never sees a
half-written message. Prints "ready" on stdout once listening; stops on
SIGTERM/SIGINT. Recipients whose local part starts with "reject" are refused
with 550, to simulate one bad mailbox.

--hang-on simulates a server that stops answering at one step, to test what a
kill at that moment does:
  data  receive the message body, write DIR/NNNN.data (not .eml), never reply;
  quit  accept messages normally, then on QUIT write DIR/NNNN.quit, never reply.
Needs `pip install aiosmtpd`.
"""

import argparse
import asyncio
import itertools
import os
import signal
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder, hang_on=None):
        self.folder = folder
        self.hang_on = hang_on
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
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        if self.hang_on == "quit":
            self._write(f"{next(self.quits):04d}.quit", b"")
            await asyncio.sleep(3600)
        return "221 Bye"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--dir", required=True)
    p.add_argument("--hang-on", choices=["data", "quit"])
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Sink(args.dir, args.hang_on), hostname=args.host, port=args.port)
    controller.start()
    print("ready", flush=True)

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
