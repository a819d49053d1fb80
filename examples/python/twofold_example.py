#!/usr/bin/env python3
"""A small client of Twofold's Web Service SDK (/sdk/v1).

It creates a user, enrols an authenticator app (TOTP) for them and activates it with a code
computed by pyotp from the returned otpauth:// URI, then authenticates the user the way an
application would: the password first, then the next code. Every step prints what happened;
any unexpected answer stops the program with a non-zero exit status.

    pip install requests pyotp
    python3 twofold_example.py --url https://mfa.example.com:8443 \\
        --user my-app --secret "$SECRET" --ca-file data/tls/cert.pem

The same values can come from the environment: SDK_URL, SDK_USER, SDK_SECRET, SDK_CA_FILE.
(Not TWOFOLD_*: the server refuses TWOFOLD_ variables it does not know, and this program is
often run from the same shell.)
"""

import argparse
import os
import secrets
import sys
import time

import pyotp
import requests


class SdkError(Exception):
    """An answer the program did not expect, with the server's problem when there is one."""


class Sdk:
    """The SDK's JSON calls over one HTTPS session, authenticated with HTTP Basic."""

    def __init__(self, url, account, secret, ca_file):
        self.base = url.rstrip("/") + "/sdk/v1"
        self.session = requests.Session()
        self.session.auth = (account, secret)  # HTTP Basic: never in the query string
        self.session.headers["Accept"] = "application/json"
        # Trust the server's certificate: its own CA file, or the system's store when None.
        # Given with every request: requests lets REQUESTS_CA_BUNDLE override session.verify.
        self.verify = ca_file if ca_file else True

    def send(self, method, path, body=None):
        return self.session.request(method, self.base + path, json=body, verify=self.verify,
                                    timeout=30)

    def call(self, method, path, expected, body=None):
        response = self.send(method, path, body)
        if response.status_code != expected:
            raise SdkError(describe(method, path, response))
        return response.json() if response.content else None


def describe(method, path, response):
    """One line for an unexpected answer: an RFC 9457 problem names its stable code."""
    if response.headers.get("Content-Type", "").startswith("application/problem+json"):
        problem = response.json()
        return (
            f"{method} {path}: {problem.get('status')} {problem.get('code')}: "
            f"{problem.get('detail', problem.get('title'))}"
        )
    return f"{method} {path}: HTTP {response.status_code}: {response.text[:200]}"


def run(sdk, username, password, keep):
    user = sdk.call("POST", "/users", 201, {"username": username, "password": password})
    print(f"created user {user['username']} (enrolled: {user['enrolled']})")
    try:
        second_factor(sdk, username, password)
    finally:
        if not keep:
            deleted = sdk.send("DELETE", f"/users/{username}")
            if deleted.status_code == 204:
                print(f"deleted user {username}")
            else:
                print(f"could not delete: {describe('DELETE', f'/users/{username}', deleted)}",
                      file=sys.stderr)


def second_factor(sdk, username, password):
    # An authenticator app: the otpauth:// URI is what a phone reads from the QR code.
    enrolment = sdk.call("POST", f"/users/{username}/oath", 201, {"kind": "software"})
    totp = pyotp.parse_uri(enrolment["otpauth_uri"])
    print(f"enrolment {enrolment['state']}: {enrolment['otpauth_uri']}")
    verified = sdk.call("POST", f"/users/{username}/oath/verify", 200, {"code": totp.now()})
    print(f"first code verified: {verified['verified']} (via {verified['via']})")

    # An authentication: the password, then what the server says is needed next.
    authentication = sdk.call(
        "POST",
        "/authentications",
        201,
        {
            "username": username,
            "password": password,
            # The end user's address as your application saw it (documentation range here).
            "client_ip": "198.51.100.10",
            "context": {"application": "python-example"},
        },
    )
    print(f"authentication {authentication['id']}: {authentication['state']}, "
          f"next: {authentication['next']}")
    if authentication["state"] != "pending" or authentication["next"] != "otp":
        raise SdkError(f"expected a pending authentication asking for an OTP: {authentication}")

    # Codes are single-use: the enrolment spent this time step's code, so answer with the
    # next one (the server accepts one step of drift either way).
    code = totp.at(time.time() + 30)
    answered = sdk.call("POST", f"/authentications/{authentication['id']}/answer", 200,
                        {"otp": code})
    print(f"answered with the next code: {answered['state']} (via {answered['via']})")
    polled = sdk.call("GET", f"/authentications/{authentication['id']}", 200)
    print(f"polled: {polled['state']}")
    if polled["state"] != "approved":
        raise SdkError(f"expected approved, got {polled['state']}")

    # The same code again is refused: a replay is never approved.
    again = sdk.call("POST", "/authentications", 201,
                     {"username": username, "password": password, "client_ip": "198.51.100.10"})
    path = f"/authentications/{again['id']}/answer"
    replay = sdk.send("POST", path, {"otp": code})
    if replay.status_code == 200:
        raise SdkError("a replayed code was accepted")
    print(f"replaying the code: refused ({describe('POST', path, replay)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("SDK_URL"),
                        help="the server, such as https://127.0.0.1:8443 (SDK_URL)")
    parser.add_argument("--user", default=os.environ.get("SDK_USER"),
                        help="the service account's name (SDK_USER)")
    parser.add_argument("--secret", default=os.environ.get("SDK_SECRET"),
                        help="the service account's secret (SDK_SECRET)")
    parser.add_argument("--ca-file", default=os.environ.get("SDK_CA_FILE"),
                        help="the server's certificate or CA, such as data/tls/cert.pem "
                             "(SDK_CA_FILE); the system's store when left out")
    parser.add_argument("--username", default=f"example-{secrets.token_hex(4)}",
                        help="the user to create (a random name by default)")
    parser.add_argument("--keep", action="store_true", help="keep the user afterwards")
    args = parser.parse_args()
    missing = [name for name in ("url", "user", "secret") if not getattr(args, name)]
    if missing:
        parser.error("missing " + ", ".join(f"--{m} (or SDK_{m.upper()})" for m in missing))

    sdk = Sdk(args.url, args.user, args.secret, args.ca_file)
    password = secrets.token_urlsafe(16)
    try:
        run(sdk, args.username, password, args.keep)
    except (SdkError, requests.RequestException) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    print("all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
