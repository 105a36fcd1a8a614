"""Running commands on another machine through the user's own ssh client.

The system ``ssh`` brings what the user already set up: ``user@host``, aliases and options in
``~/.ssh/config``, agents and keys. ``RBEE_SSH_COMMAND`` replaces the program and its options
(as ``GIT_SSH_COMMAND`` does for git), e.g. ``ssh -F ./ssh_config``. Remote commands run in
``sh`` whatever the user's login shell is, and never carry secrets: those go on stdin.
"""

from __future__ import annotations

import shlex
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rbee_core.settings import SSH_COMMAND

__all__ = ["SSH_COMMAND_ENV", "Ssh", "SshFailed", "remote_data_dir"]

SSH_COMMAND_ENV = SSH_COMMAND.name
SSH_ERROR = 255  # ssh's own failure (unreachable, refused, no key), not the remote command's

# rbee_core.paths.data_dir(), as the remote's sh works it out.
remote_data_dir = (
    'd="${RBEE_HOME:+$RBEE_HOME/data}"; d="${d:-${XDG_DATA_HOME:-$HOME/.local/share}/rbee}"'
)


class SshFailed(Exception):
    """ssh itself failed: the host is unknown or unreachable, or refused the login."""


@dataclass(frozen=True, slots=True)
class Ssh:
    host: str  # [user@]host, or a Host of the user's ssh config
    port: int | None = None

    def argv(self, script: str) -> list[str]:
        """The exact command that runs ``script`` in ``sh`` on the host. BatchMode: fail
        rather than ask for a password nobody can type."""
        program = shlex.split(SSH_COMMAND.read() or "ssh")
        options = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        if self.port is not None:
            options += ["-p", str(self.port)]
        return [*program, *options, "--", self.host, f"sh -c {shlex.quote(script)}"]

    def run(
        self, script: str, stdin: bytes = b"", timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``script``; its exit status, stdout and stderr as text. Raises ``SshFailed``
        when ssh could not run it at all."""
        try:
            done = subprocess.run(
                self.argv(script), input=stdin, capture_output=True, timeout=timeout, check=False
            )
        except FileNotFoundError as exc:
            raise SshFailed(f"no ssh client: {exc.filename} is not installed") from None
        except subprocess.TimeoutExpired:
            raise SshFailed(f"ssh {self.host} did not finish within {timeout:.0f} s") from None
        result = subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )
        if done.returncode == SSH_ERROR:
            raise SshFailed(f"ssh {self.host} failed: {result.stderr.strip() or 'code 255'}")
        return result

    def send(self, files: list[Path], script: str, progress: Callable[[int], None]) -> None:
        """Stream ``files`` as one tar archive into ``script`` (which unpacks stdin), over one
        connection; ``progress`` hears the bytes sent so far."""
        process = subprocess.Popen(
            self.argv(script),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None and process.stderr is not None
        sent = 0

        class Counting:
            def write(self, data: bytes) -> int:
                nonlocal sent
                assert process.stdin is not None
                process.stdin.write(data)
                sent += len(data)
                progress(sent)
                return len(data)

        try:
            with tarfile.open(fileobj=Counting(), mode="w|", bufsize=1 << 20) as tar:  # type: ignore[call-overload]
                for path in files:
                    tar.add(path, arcname=path.name)
            process.stdin.close()
        except BrokenPipeError:
            pass  # the remote side ended early: its status and stderr say why
        error = process.stderr.read().decode(errors="replace").strip()
        code = process.wait()
        if code == SSH_ERROR:
            raise SshFailed(f"ssh {self.host} failed: {error or 'code 255'}")
        if code != 0:
            raise SshFailed(f"copying to {self.host} failed (code {code}): {error}")
