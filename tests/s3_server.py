#!/usr/bin/env python3
"""A real S3 server for tests: moto's standalone server, with authentication on.

    python3 tests/s3_server.py [--port PORT] --put BUCKET/KEY=FILE [--put …]

Starts moto's server on 127.0.0.1:PORT (with --port 0, the default, a port
the OS picks) with request signing checked (moto's
INITIAL_NO_AUTH_ACTION_COUNT: the first three requests, which create an IAM
user with an allow-all policy and its access key, go unchecked; every later
request must be signed with that key, so a wrong key or secret is refused as
AWS would refuse it). Then creates each BUCKET and uploads each FILE under KEY.
Prints one line "ready PORT ACCESS_KEY_ID SECRET_ACCESS_KEY" on stdout once the
objects are in place; stops on SIGTERM/SIGINT or when stdin closes.
Needs `pip install 'moto[server]'` (boto3 comes with it).
"""

import argparse
import json
import os
import signal
import sys
import threading

# read by moto when it is imported
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"

from urllib.parse import quote, unquote, urlsplit, urlunsplit  # noqa: E402

import boto3  # noqa: E402
from moto.iam import access_control  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

# moto checks a signature against the request's query string as the web
# server decoded it (`prefix=csv/`), while a client signs it percent-encoded
# (`prefix=csv%2F`, as SigV4 requires): every listing under a prefix would be
# refused (getmoto/moto#5948). Re-encode the query the SigV4 way before moto
# computes the signature it expects; wrong keys and secrets are still refused.
_create_aws_request = access_control.IAMRequestBase._create_aws_request


def _signed_query(self):
    request = _create_aws_request(self)
    parts = urlsplit(request.url)
    if parts.query:
        pairs = []
        for pair in parts.query.split("&"):
            key, _, value = pair.partition("=")
            pairs.append(
                quote(unquote(key), safe="-_.~") + "=" + quote(unquote(value), safe="-_.~")
            )
        request.url = urlunsplit(parts._replace(query="&".join(pairs)))
    return request


access_control.IAMRequestBase._create_aws_request = _signed_query


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--put", action="append", default=[], metavar="BUCKET/KEY=FILE")
    args = ap.parse_args()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    _host, port = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{port}"
    region = "us-east-1"

    # the three unchecked requests: a user, its policy, its key
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="callout")
    iam.put_user_policy(
        UserName="callout",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="callout")["AccessKey"]

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    buckets = set()
    for put in args.put:
        target, path = put.split("=", 1)
        bucket, object_key = target.split("/", 1)
        if bucket not in buckets:
            s3.create_bucket(Bucket=bucket)
            buckets.add(bucket)
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=object_key, Body=f.read())

    print(f"ready {port} {key['AccessKeyId']} {key['SecretAccessKey']}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def stdin_closed():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=stdin_closed, daemon=True).start()
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
