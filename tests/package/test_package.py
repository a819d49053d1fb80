"""The Debian package, installed as an operator would: dpkg -i, the server started as
its systemd unit says, the first user added with the command the server prints, a
sign-in to the portal with an authenticator app, then dpkg -r and dpkg --purge.

The test machine has no running systemd, so the unit's ExecStart is started by hand
with the unit's User, Group, WorkingDirectory and UMask, and a NOTIFY_SOCKET on which
the server must say READY=1 (Type=notify) and STOPPING=1. Only the listen address is
overridden (TWOFOLD_LISTEN=127.0.0.1:0), since port 443 needs the capability systemd
gives.

Usage, as root: python test_package.py path/to/twofold_*.deb
(scripts/test runs it with the Python environment that has requests and pyotp.)
"""

import grp
import html
import os
import pwd
import queue
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import pyotp
import requests

CONFIG = "/etc/twofold/twofold.toml"
DATA_DIR = "/var/lib/twofold"
UNIT_DIRS = ["/lib/systemd/system", "/usr/lib/systemd/system"]
USERNAME = "alice"
PASSWORD = "package test passphrase 7Q"

checks = 0


def check(condition, message):
    global checks
    if not condition:
        raise AssertionError(message)
    checks += 1


def step(text):
    print(f"--- {text}", flush=True)


def run(argv, stdin=None, **kwargs):
    """Runs a command, returns (exit code, stdout + stderr)."""
    done = subprocess.run(
        argv,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )
    return done.returncode, done.stdout


def run_ok(argv, stdin=None, **kwargs):
    code, out = run(argv, stdin, **kwargs)
    check(code == 0, f"{shlex.join(argv)} failed ({code}):\n{out}")
    return out


def package_status():
    """dpkg's status of the package: 'ii' installed, 'rc' removed with its configuration
    kept, None when dpkg knows nothing of it."""
    code, out = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "twofold"])
    return out.strip() if code == 0 and out.strip() else None


def owner_mode(path):
    st = os.stat(path)
    return (
        pwd.getpwuid(st.st_uid).pw_name,
        grp.getgrgid(st.st_gid).gr_name,
        f"{stat.S_IMODE(st.st_mode):04o}",
    )


def unit_file(name):
    for directory in UNIT_DIRS:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def service_section(path):
    """The [Service] keys of a unit file (the last value of a repeated key)."""
    keys, section = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                key, value = line.split("=", 1)
                keys[key.strip()] = value.strip()
    return keys


class Server:
    """The unit's ExecStart, started as systemd would start it."""

    def __init__(self, unit):
        self.unit = unit
        self.lines = queue.Queue()
        self.output = []
        self.notify_dir = tempfile.mkdtemp(prefix="twofold-notify-")
        os.chmod(self.notify_dir, 0o755)
        self.notify_path = os.path.join(self.notify_dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        # The server runs as the unit's user, who must be able to write to the socket.
        os.chmod(self.notify_path, 0o666)
        self.messages = []
        argv = shlex.split(unit["ExecStart"])
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": DATA_DIR,
            "USER": unit["User"],
            "LOGNAME": unit["User"],
            "NOTIFY_SOCKET": self.notify_path,
            "TWOFOLD_LISTEN": "127.0.0.1:0",
        }
        self.process = subprocess.Popen(
            argv,
            user=unit["User"],
            group=unit["Group"],
            extra_groups=[],
            umask=int(unit["UMask"], 8),
            cwd=unit["WorkingDirectory"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def text(self):
        return "\n".join(self.output)

    def wait_for_line(self, prefix, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                check(
                    self.process.poll() is None,
                    f"the server exited ({self.process.returncode}):\n{self.text()}",
                )
                continue
            if line.strip().startswith(prefix):
                return line.strip()[len(prefix) :].strip()
        raise AssertionError(f"no line starting with {prefix!r} within {timeout} s:\n{self.text()}")

    def wait_for_notice(self, state, timeout=60):
        """Waits for a datagram on NOTIFY_SOCKET holding `state` (READY=1, STOPPING=1)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(state in m.splitlines() for m in self.messages):
                return
            self.notify.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                self.messages.append(self.notify.recv(4096).decode())
            except socket.timeout:
                break
        raise AssertionError(
            f"no {state} on NOTIFY_SOCKET within {timeout} s (got {self.messages}):\n{self.text()}"
        )

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.notify.close()
        shutil.rmtree(self.notify_dir, ignore_errors=True)


def as_service_user(unit, argv, stdin=None):
    """A command as the unit's user, as `sudo -u twofold ...` runs it."""
    return run(
        argv,
        stdin=stdin,
        user=unit["User"],
        group=unit["Group"],
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "USER": unit["User"]},
    )


def form_token(page, action):
    form = page[page.index(f'action="{action}"') :]
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    check(found is not None, f"no CSRF token in the form {action}:\n{page}")
    return found.group(1)


def location(response):
    return urllib.parse.urlsplit(response.headers.get("location", "")).path


def sign_in(client, base):
    page = client.get(f"{base}/sign-in").text
    return client.post(
        f"{base}/sign-in",
        data={
            "csrf_token": form_token(page, "/sign-in"),
            "username": USERNAME,
            "password": PASSWORD,
            "next": "/account",
        },
        allow_redirects=False,
    )


def portal_sign_in_with_an_authenticator_app(base, cert):
    """Password, enrolment of an authenticator app (pyotp), sign-out, then password and
    code. Returns the secret."""
    client = requests.Session()
    client.verify = cert
    # The certificate given, whatever REQUESTS_CA_BUNDLE or a proxy variable says.
    client.trust_env = False
    first = sign_in(client, base)
    check(first.status_code == 303 and location(first) == "/enroll", f"after the password: {first.status_code} {first.headers}")
    to = location(client.get(f"{base}/enroll", allow_redirects=False))
    if to == "/enroll/method":
        page = client.get(f"{base}/enroll/method").text
        chosen = client.post(
            f"{base}/enroll/method",
            data={"csrf_token": form_token(page, "/enroll/method"), "method": "oath"},
            allow_redirects=False,
        )
        to = location(chosen)
    check(to == "/enroll/oath", f"the enrolment goes to {to!r}, not the authenticator app")
    page = client.get(f"{base}/enroll/oath").text
    started = client.post(
        f"{base}/enroll/oath/start",
        data={"csrf_token": form_token(page, "/enroll/oath/start")},
        allow_redirects=False,
    )
    check(started.status_code == 303, f"starting the enrolment: {started.status_code}")
    page = client.get(f"{base}/enroll/oath").text
    shown = re.search(r'<code id="otpauth-uri">([^<]+)</code>', page)
    check(shown is not None, f"no otpauth URI on the enrolment page:\n{page}")
    totp = pyotp.parse_uri(html.unescape(shown.group(1)))
    activated = client.post(
        f"{base}/enroll/oath",
        data={"csrf_token": form_token(page, "/enroll/oath"), "code": totp.now()},
        allow_redirects=False,
    )
    check(
        activated.status_code == 303 and location(activated) == "/enroll",
        f"activating the token: {activated.status_code} {activated.text[:2000]}",
    )
    done = client.get(f"{base}/enroll", allow_redirects=False)
    check(location(done) == "/account", f"after the enrolment: {location(done)!r}")
    account = client.get(f"{base}/account")
    check(account.status_code == 200 and USERNAME in account.text, "the account page after the enrolment")
    client.post(
        f"{base}/sign-out",
        data={"csrf_token": form_token(account.text, "/sign-out")},
        allow_redirects=False,
    )
    check(
        location(client.get(f"{base}/account", allow_redirects=False)) != "",
        "signed out, the account page sends elsewhere",
    )

    # Again: the password, then a code (of the next step: the enrolment's is used).
    again = sign_in(client, base)
    check(location(again) == "/verify", f"the second sign-in asks for a code: {location(again)!r}")
    page = client.get(f"{base}/verify").text
    verified = client.post(
        f"{base}/verify",
        data={"csrf_token": form_token(page, "/verify"), "code": totp.at(time.time() + 30)},
        allow_redirects=False,
    )
    check(
        verified.status_code == 303 and location(verified) == "/account",
        f"the code signs in: {verified.status_code} {verified.text[:2000]}",
    )
    check(USERNAME in client.get(f"{base}/account").text, "the account page after the code")


def installed_files_are_in_place():
    step("the account, the data directory, the configuration, the units, the man pages")
    account = pwd.getpwnam("twofold")
    check(0 < account.pw_uid < 1000, f"twofold is a system account (uid {account.pw_uid})")
    check(account.pw_dir == DATA_DIR, f"twofold's home: {account.pw_dir}")
    check(account.pw_shell.endswith("nologin"), f"twofold's shell: {account.pw_shell}")
    check(grp.getgrgid(account.pw_gid).gr_name == "twofold", "twofold's group is twofold")
    check(owner_mode(DATA_DIR) == ("twofold", "twofold", "0700"), f"{DATA_DIR}: {owner_mode(DATA_DIR)}")
    check(owner_mode("/etc/twofold") == ("root", "twofold", "0750"), f"/etc/twofold: {owner_mode('/etc/twofold')}")
    check(owner_mode(CONFIG) == ("root", "twofold", "0640"), f"{CONFIG}: {owner_mode(CONFIG)}")
    conffiles = run_ok(["dpkg-query", "-W", "-f=${Conffiles}", "twofold"])
    check(CONFIG in conffiles, f"{CONFIG} is a conffile: {conffiles}")
    with open(CONFIG, encoding="utf-8") as f:
        config = f.read()
    check('\nlisten = "[::]:443"\n' in config, "the packaged configuration listens on [::]:443")
    check(f'\ndata_dir = "{DATA_DIR}"\n' in config, "the packaged configuration keeps its data in /var/lib/twofold")
    check(config.startswith("# /etc/twofold/twofold.toml:"), "the packaged configuration says what it is")
    check(os.path.isfile("/usr/share/doc/twofold/twofold.example.toml"), "the example configuration is in the docs")
    check(os.path.isfile("/usr/share/doc/twofold/docs/deploy-single-host.md"), "the operator's docs are installed")
    for program in ["/usr/bin/twofold", "/usr/bin/twofold-authenticator"]:
        run_ok([program, "--version"])

    units = {}
    for name in ["twofold.service", "twofold-portal.service"]:
        path = unit_file(name)
        check(path is not None, f"{name} is installed in {UNIT_DIRS}")
        unit = service_section(path)
        units[name] = unit
        for key, value in [
            ("Type", "notify"),
            ("NotifyAccess", "main"),
            ("User", "twofold"),
            ("Group", "twofold"),
            ("ProtectSystem", "strict"),
            ("NoNewPrivileges", "yes"),
            ("PrivateTmp", "yes"),
            ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
            ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
            ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
            ("SystemCallFilter", "@system-service"),
            ("Restart", "on-failure"),
            ("UMask", "0077"),
        ]:
            check(unit.get(key) == value, f"{name}: {key}={unit.get(key)!r}, expected {value!r}")
    check(
        units["twofold.service"]["ExecStart"] == f"/usr/bin/twofold --config {CONFIG} serve",
        f"twofold.service's ExecStart: {units['twofold.service']['ExecStart']}",
    )
    check(units["twofold.service"]["ReadWritePaths"] == DATA_DIR, "twofold.service may write to /var/lib/twofold")
    check(
        units["twofold-portal.service"]["ExecStart"] == "/usr/bin/twofold --config /etc/twofold/portal.toml portal",
        f"twofold-portal.service's ExecStart: {units['twofold-portal.service']['ExecStart']}",
    )
    for name in ["twofold.service", "twofold-portal.service"]:
        check(
            not os.path.exists(f"/etc/systemd/system/multi-user.target.wants/{name}"),
            f"{name} is not enabled by the installation",
        )
    # systemd-analyze works without a running systemd: the units' syntax, their commands
    # and their Documentation= pages.
    code, out = run(["systemd-analyze", "verify", unit_file("twofold.service"), unit_file("twofold-portal.service")])
    ours = [line for line in out.splitlines() if "twofold" in line]
    check(code == 0 and not ours, f"systemd-analyze verify ({code}):\n{out}")
    for page in ["twofold", "twofold-serve", "twofold-user-add", "twofold-portal", "twofold-authenticator", "twofold-authenticator-approve"]:
        path = f"/usr/share/man/man1/{page}.1.gz"
        check(os.path.isfile(path), f"the manual page {path}")
    found = run_ok(["man", "-w", "twofold-serve"]).strip()
    check(found == "/usr/share/man/man1/twofold-serve.1.gz", f"man -w twofold-serve: {found}")
    return units["twofold.service"]


def server_starts_and_a_user_signs_in(unit):
    step("the unit's ExecStart, as twofold, with the packaged configuration")
    server = Server(unit)
    try:
        base = server.wait_for_line("portal:").rstrip("/")
        check(base.startswith("https://127.0.0.1:"), f"the portal's address: {base}")
        server.wait_for_notice("READY=1")
        cert = os.path.join(DATA_DIR, "tls", "cert.pem")
        ready = requests.get(f"{base}/readyz", verify=cert, timeout=10)
        check(ready.status_code == 200 and ready.json()["status"] == "ready", f"/readyz after READY=1: {ready.status_code} {ready.text}")
        check(owner_mode(os.path.join(DATA_DIR, "twofold.db"))[:2] == ("twofold", "twofold"), "the database belongs to twofold")
        check(stat.S_IMODE(os.stat(os.path.join(DATA_DIR, "twofold.db")).st_mode) & 0o077 == 0, "the database is private (UMask=0077)")

        step("the first-user instructions, followed as printed")
        time.sleep(0.5)  # the rest of the banner follows the portal's line at once
        banner = server.text()
        check("No users yet" in banner, f"no first-user instructions:\n{banner}")
        add = next((l.strip() for l in banner.splitlines() if " user add alice " in l), None)
        expected = f"sudo -u twofold twofold --config {CONFIG} user add alice --password-stdin"
        check(add == expected, f"the printed command is {add!r}, expected {expected!r}")
        make_owner = next((l.strip() for l in banner.splitlines() if " admin add alice " in l), None)
        check(
            make_owner == f"sudo -u twofold twofold --config {CONFIG} admin add alice --role owner",
            f"the printed administrator command: {make_owner!r}",
        )
        # This machine may have no sudo: the command's own words, as the user sudo names.
        for printed, stdin in [(add, PASSWORD + "\n"), (make_owner, None)]:
            argv = shlex.split(printed)
            check(argv[:3] == ["sudo", "-u", "twofold"], f"{printed} runs as twofold")
            code, out = as_service_user(unit, argv[3:], stdin)
            check(code == 0, f"{printed} failed ({code}):\n{out}")

        step("sign in to the portal over HTTPS, enrol an authenticator app, sign in with a code")
        portal_sign_in_with_an_authenticator_app(base, cert)

        step("SIGTERM: STOPPING=1, then a clean exit")
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_notice("STOPPING=1", timeout=30)
        check(server.process.wait(timeout=30) == 0, f"the server's exit code: {server.process.returncode}\n{server.text()}")
    finally:
        server.stop()


def data_survives_a_reinstall(deb, unit):
    step("reinstalled after the purge, the server finds alice in the kept data")
    out = run_ok(["dpkg", "-i", deb])
    check(owner_mode(DATA_DIR) == ("twofold", "twofold", "0700"), f"{DATA_DIR} after the reinstall: {owner_mode(DATA_DIR)}")
    code, users = as_service_user(unit, ["twofold", "--config", CONFIG, "user", "list"])
    check(code == 0 and USERNAME in users, f"user list after the reinstall ({code}):\n{users}")
    check("Twofold is installed" in out, f"dpkg -i's message:\n{out}")


def main():
    if len(sys.argv) != 2 or not os.path.isfile(sys.argv[1]):
        sys.exit("usage: test_package.py path/to/twofold_*.deb")
    deb = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        sys.exit("test_package.py installs a package: run it as root (scripts/test does, through sudo)")
    if package_status() not in (None, "un", "pn"):
        sys.exit(f"the twofold package is already here ({package_status()}): this test installs and purges it. Remove it first.")
    for tool in ["dpkg", "dpkg-statoverride", "systemd-analyze", "man"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: scripts/test installs it (Debian packages dpkg, systemd, man-db)")
    if os.path.exists(DATA_DIR):
        sys.exit(f"{DATA_DIR} exists: it may hold a real server's data, which this test would delete. Move it away first.")

    try:
        step(f"dpkg -i {os.path.basename(deb)}")
        out = run_ok(["dpkg", "-i", deb])
        check(package_status() == "ii", f"installed: {package_status()}")
        check("systemctl enable --now twofold" in out, f"dpkg -i says how to start the server:\n{out}")
        unit = installed_files_are_in_place()

        step("dpkg -i again, as an upgrade runs: the permissions stay, no first-install message")
        out = run_ok(["dpkg", "-i", deb])
        check("Twofold is installed" not in out, f"the first-install message is for the first install only:\n{out}")
        check(owner_mode(CONFIG) == ("root", "twofold", "0640"), f"{CONFIG} after an upgrade: {owner_mode(CONFIG)}")
        check(owner_mode(DATA_DIR) == ("twofold", "twofold", "0700"), f"{DATA_DIR} after an upgrade: {owner_mode(DATA_DIR)}")
        server_starts_and_a_user_signs_in(unit)

        step("dpkg -r keeps the configuration and the data")
        run_ok(["dpkg", "-r", "twofold"])
        check(package_status() == "rc", f"removed, configuration kept: {package_status()}")
        check(not os.path.exists("/usr/bin/twofold"), "the program is gone")
        check(os.path.isfile(CONFIG), f"{CONFIG} is kept by dpkg -r")
        check(os.path.isfile(os.path.join(DATA_DIR, "twofold.db")), "the database is kept by dpkg -r")

        step("dpkg --purge removes the configuration, keeps the data and says so")
        out = run_ok(["dpkg", "--purge", "twofold"])
        check(package_status() in (None, "un", "pn"), f"purged: {package_status()}")
        check(not os.path.exists(CONFIG), f"{CONFIG} is removed by the purge")
        check(not os.path.exists("/etc/twofold"), "/etc/twofold is removed by the purge")
        check(os.path.isfile(os.path.join(DATA_DIR, "twofold.db")), "the database is kept by the purge")
        check(os.listdir(os.path.join(DATA_DIR, "keys")), "the sealing keys are kept by the purge")
        check(f"rm -rf {DATA_DIR}" in out, f"the purge says how to delete the data:\n{out}")
        check(run(["dpkg-statoverride", "--list", "/etc/twofold"])[0] != 0, "the purge removes its permission overrides")
        check(pwd.getpwnam("twofold") is not None, "the system account is kept")

        data_survives_a_reinstall(deb, unit)
        run_ok(["dpkg", "--purge", "twofold"])
    finally:
        # Leave the machine as it was, but for the system account (packages keep theirs).
        if package_status() not in (None, "un", "pn"):
            run(["dpkg", "--purge", "twofold"])
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    print(f"package test: {checks} checks passed")


if __name__ == "__main__":
    main()
