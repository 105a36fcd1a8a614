"""A second "machine" for specs of hives on other hosts: a network namespace joined to this
one by a veth pair, with its own sshd, reached through a generated ssh client config.

Everything stays on this machine: the two addresses are in a private 10.213.N.0/24 that
nothing else here uses, and the namespace has no route anywhere else. The namespace shares
this machine's file system and users, so a session's HOME (and the directory it starts in)
comes from ``remote_env``: a session never writes to the real home directory.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

__all__ = ["RemoteHost"]

_SSHD = "/usr/sbin/sshd"
_SFTP_SERVER = "/usr/lib/openssh/sftp-server"
_PREFIX = "rbee-t"  # namespace names: rbee-t<pid>-<n>
_instances = itertools.count(1)
_subnets_in_use: set[int] = set()  # third octets taken by live instances of this process
_lock = threading.Lock()
_GUARD_METRIC = "4242"

# Every session: start in $HOME (sshd itself starts it in the passwd home, the real one),
# then run the requested command (or a login shell when there is none).
_FORCE_COMMAND = (
    'cd "$HOME" || exit 1; '
    'if [ -n "${SSH_ORIGINAL_COMMAND+x}" ]; then eval "$SSH_ORIGINAL_COMMAND"; '
    'else exec "${SHELL:-/bin/sh}" -l; fi'
)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _namespaces() -> list[str]:
    listing = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def _namespace_pids(namespace: str) -> list[int]:
    listing = _ip("netns", "pids", namespace, check=False).stdout
    return [int(word) for word in listing.split() if word.isdigit()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_namespace(namespace: str) -> None:
    """Kill everything in the namespace, then delete it (and so its end of the veth pair,
    which takes the other end with it)."""
    deadline = time.monotonic() + 10
    while (pids := _namespace_pids(namespace)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    _ip("netns", "delete", namespace, check=False)


def _reap_crashed_runs() -> None:
    """Namespaces of earlier runs whose process is gone (a run that crashed before close)."""
    for namespace in _namespaces():
        match = re.fullmatch(rf"{_PREFIX}(\d+)-\d+", namespace)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            _remove_namespace(namespace)
    # the guard routes of those runs: a guard whose /24 has no address here any more
    addresses = _ip("-o", "-4", "addr").stdout
    for line in _ip("route").stdout.splitlines():
        match = re.fullmatch(
            rf"unreachable 10\.213\.(\d+)\.0/24 metric {_GUARD_METRIC}", line.strip()
        )
        if match and f"inet 10.213.{match.group(1)}.1/24" not in addresses:
            with _lock:
                if int(match.group(1)) in _subnets_in_use:  # one of ours, starting
                    continue
            _ip("route", "delete", *_guard_route(int(match.group(1))), check=False)


def _guard_route(subnet: int) -> tuple[str, ...]:
    """The spare route that keeps a test /24 on this machine (metric 4242 marks it ours)."""
    return ("unreachable", f"10.213.{subnet}.0/24", "metric", _GUARD_METRIC)


def _free_subnet() -> int:
    """A third octet N such that 10.213.N.0/24 appears nowhere in this namespace's addresses
    or routes, nor in another live RemoteHost of this process."""
    seen = _ip("-o", "addr").stdout + _ip("route").stdout + _ip("-o", "-6", "route").stdout
    taken = {int(n) for n in re.findall(r"\b10\.213\.(\d{1,3})\.", seen)}
    start = os.getpid() % 254  # spread parallel test processes over the range
    for offset in range(254):
        n = (start + offset) % 254 + 1
        if n not in taken and n not in _subnets_in_use:
            _subnets_in_use.add(n)
            return n
    raise AssertionError("no free 10.213.N.0/24 for a test network namespace")


class RemoteHost:
    """A second machine for tests: a network namespace joined to this one by a veth pair
    (two addresses in a private /24 nothing else uses), with its own sshd."""

    alias = "rbee-remote"

    def __init__(self, workdir: Path, remote_env: dict[str, str]) -> None:
        self.workdir = Path(workdir)
        self.remote_env = dict(remote_env)
        number = next(_instances)
        pid = os.getpid()
        self.namespace = f"{_PREFIX}{pid}-{number}"
        self.host_interface = f"rb{pid}n{number}"  # this machine's end
        assert len(self.host_interface) <= 15, f"interface name too long: {self.host_interface}"
        self.remote_interface = "eth0"  # created directly inside the namespace
        self.subnet: int | None = None
        self.local_address = ""
        self.address = ""
        self.ssh_config = self.workdir / "ssh_config"
        self.ssh_command = f"ssh -F {shlex.quote(str(self.ssh_config))}"
        self.sshd: subprocess.Popen[bytes] | None = None
        self.sshd_log = self.workdir / "sshd.log"
        self._namespace_inode: int | None = None
        self._owns_subnet = False
        self._guarded = False

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Create the namespace, the veth pair, the addresses and routes, bring lo up, and
        start sshd in the namespace; returns once an ssh session works."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        _reap_crashed_runs()
        if self.namespace in _namespaces():  # left by an earlier process with our pid
            _remove_namespace(self.namespace)
        _ip("link", "delete", self.host_interface, check=False)
        with _lock:
            self.subnet = _free_subnet()
            self._owns_subnet = True
        self.local_address = f"10.213.{self.subnet}.1"
        self.address = f"10.213.{self.subnet}.2"

        ns = self.namespace
        _ip("netns", "add", ns)
        self._namespace_inode = os.stat(f"/run/netns/{ns}").st_ino
        _ip(
            "link",
            "add",
            self.host_interface,
            "type",
            "veth",
            "peer",
            "name",
            self.remote_interface,
            "netns",
            ns,
        )
        _ip("addr", "add", f"{self.local_address}/24", "dev", self.host_interface)
        # While this end is down (cut_link) the kernel drops its route to the /24, and the
        # address would then go out through the default route: off this machine. A spare
        # route keeps it here, answering "no route to host" as a machine that is gone does.
        # (Added after the address: _reap_crashed_runs takes a guard without one for a leftover.)
        _ip("route", "add", *_guard_route(self.subnet))
        self._guarded = True
        _ip("link", "set", self.host_interface, "up")
        _ip("-n", ns, "addr", "add", f"{self.address}/24", "dev", self.remote_interface)
        _ip("-n", ns, "link", "set", self.remote_interface, "up")
        _ip("-n", ns, "link", "set", "lo", "up")

        self._write_ssh_files()
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation
        log = open(self.sshd_log, "ab")  # noqa: SIM115 (lives with the process)
        self.sshd = subprocess.Popen(
            ["ip", "netns", "exec", ns, _SSHD, "-D", "-e", "-f", str(self.workdir / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        self._wait_for_ssh(10)

    def _write_ssh_files(self) -> None:
        work = self.workdir
        for key in ("ssh_host_ed25519_key", "id_ed25519"):
            for path in (work / key, work / f"{key}.pub"):
                path.unlink(missing_ok=True)
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", str(work / key)],
                check=True,
                capture_output=True,
                timeout=30,
            )
        home = self.remote_env.get("HOME")
        if home:
            Path(home).mkdir(parents=True, exist_ok=True)

        options = ",".join(
            f'environment="{name}={value}"' for name, value in self.remote_env.items()
        )
        if any('"' in f"{n}{v}" or "\n" in f"{n}{v}" for n, v in self.remote_env.items()):
            raise ValueError(f"remote_env cannot hold quotes or new lines: {self.remote_env}")
        public_key = (work / "id_ed25519.pub").read_text().strip()
        authorized = work / "authorized_keys"
        authorized.write_text(f"{options} {public_key}\n" if options else f"{public_key}\n")
        authorized.chmod(0o600)

        sftp = f"Subsystem sftp {_SFTP_SERVER}\n" if Path(_SFTP_SERVER).exists() else ""
        (work / "sshd_config").write_text(
            f"ListenAddress {self.address}:22\n"
            f"HostKey {work / 'ssh_host_ed25519_key'}\n"
            f"PidFile {work / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized}\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PermitUserEnvironment yes\n"
            # not ~/.ssh/rc of the real home, and no login records or messages
            "PermitUserRC no\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            "X11Forwarding no\n"
            "LogLevel INFO\n"
            f"ForceCommand {_FORCE_COMMAND}\n"
            f"{sftp}"
        )
        self.ssh_config.write_text(
            f"Host {self.alias}\n"
            f"    HostName {self.address}\n"
            "    User root\n"
            "    Port 22\n"
            f"    IdentityFile {work / 'id_ed25519'}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {work / 'known_hosts'}\n"
            "    StrictHostKeyChecking accept-new\n"
            "    BatchMode yes\n"
            "    ConnectTimeout 5\n"
            "    LogLevel ERROR\n"
        )

    def _wait_for_ssh(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            assert self.sshd is not None
            if self.sshd.poll() is not None:
                last = f"sshd exited with {self.sshd.returncode}"
            else:
                try:
                    result = self.ssh("true", timeout=max(1.0, deadline - time.monotonic()))
                    if result.returncode == 0:
                        return
                    last = result.stderr.decode(errors="replace").strip()
                except subprocess.TimeoutExpired:
                    last = "ssh timed out"
            if self.sshd.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no ssh session to {self.address} (namespace {self.namespace}) within "
                    f"{timeout} s: {last}; sshd log:\n{self._log_tail()}"
                )
            time.sleep(0.1)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.sshd_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no sshd log)"

    def close(self) -> None:
        """Kill sshd and everything else running in the namespace, and delete the namespace
        (and with it the veth pair). Idempotent; never raises."""
        with contextlib.suppress(Exception):
            if self.sshd is not None and self.sshd.poll() is None:
                self.sshd.kill()
            if self.sshd is not None:
                self.sshd.wait(10)
        with contextlib.suppress(Exception):
            if self.namespace in _namespaces():
                _remove_namespace(self.namespace)
        with contextlib.suppress(Exception):
            # normally gone with the namespace; not if start stopped between the two
            if Path(f"/sys/class/net/{self.host_interface}").exists():
                _ip("link", "delete", self.host_interface, check=False)
        with contextlib.suppress(Exception):
            if self._guarded:
                _ip("route", "delete", *_guard_route(self.subnet or 0), check=False)
                self._guarded = False
        with _lock:
            if self.subnet is not None and self._owns_subnet:
                _subnets_in_use.discard(self.subnet)
                self._owns_subnet = False
        self._namespace_inode = None

    # -- use ---------------------------------------------------------------------------

    def ssh(
        self, command: str, input: bytes | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a shell command on the remote (as the product would, through ssh -F)."""
        return subprocess.run(
            ["ssh", "-F", str(self.ssh_config), self.alias, command],
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            timeout=timeout,
        )

    def in_namespace(self, pid: int) -> bool:
        """Whether process pid runs in this host's network namespace."""
        if self._namespace_inode is None:
            return False
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == self._namespace_inode
        except OSError:
            return False

    def cut_link(self) -> None:
        """Take this machine's end of the veth pair down: the remote becomes unreachable."""
        _ip("link", "set", self.host_interface, "down")

    def restore_link(self) -> None:
        """Bring this machine's end of the veth pair back up."""
        _ip("link", "set", self.host_interface, "up")
