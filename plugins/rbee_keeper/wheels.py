"""The running installation as a set of wheels, made from what is installed here.

``rbee-keeper hive install --ssh HOST`` puts this exact installation on another machine, which may
have no internet: it copies a folder of wheels there and lets pip install from that folder alone
(``--no-index --find-links``). Downloading the same versions again would need the network on one
side or the other and could still pick different builds (torch's ``+cpu``, a llama.cpp compiled
here), so every distribution is packed back into a wheel from its installed files instead.

A normal install keeps a RECORD of the files it wrote and the WHEEL file it came with, which is
all a wheel needs: the files, their tags, and a fresh RECORD. An editable install lists no sources
in its RECORD, so it is built again from its source folder by pip.
"""

from __future__ import annotations

import base64
import csv
import email.parser
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import Distribution, PackagePath, distributions
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import parse_tag
from packaging.utils import NormalizedName, canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion

__all__ = ["WheelError", "bundle", "closure", "wheel_for"]

# Installer bookkeeping: pip writes its own on the other side, and the old RECORD is replaced.
SKIPPED_DIST_INFO_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}

CHUNK = 1 << 20

Progress = Callable[[str], None]


class WheelError(Exception):
    """The installation cannot be turned into wheels; the message says what to fix."""


# --------------------------------------------------------------------------------------------
# The closure of requirements over what is installed


def closure(names: list[str]) -> list[Distribution]:
    """The installed distributions that `names` need, themselves included, following
    Requires-Dist with their environment markers evaluated for this interpreter, extras
    followed when asked for: a name may carry extras, e.g. "rbee[llamacpp]". Sorted by
    name, each once. A requirement that is not installed raises a clear error naming it
    and who needs it."""
    installed = _installed()
    chosen: dict[NormalizedName, Distribution] = {}
    # (distribution, extra) pairs already followed; "" stands for the requirements of no extra.
    followed: set[tuple[NormalizedName, str]] = set()
    todo: list[tuple[Requirement, str | None]] = [(_parse_requirement(n), None) for n in names]
    while todo:
        req, needed_by = todo.pop()
        key = canonicalize_name(req.name)
        dist = installed.get(key)
        if dist is None:
            who = f" ({needed_by} needs {req})" if needed_by else ""
            raise WheelError(f"{req.name} is not installed here{who}")
        _check_version(req, dist, needed_by)
        chosen[key] = dist
        provided = {canonicalize_name(e) for e in dist.metadata.get_all("Provides-Extra") or []}
        extras = sorted(canonicalize_name(e) for e in req.extras)
        unknown = [e for e in extras if e not in provided]
        # pip only warns about an extra a dependency does not provide; a name asked for
        # directly with a wrong extra is more likely a typo that would silently drop packages.
        if unknown and needed_by is None:
            raise WheelError(
                f"{dist.name} {dist.version} has no extra {', '.join(unknown)}"
                f" (it has: {', '.join(sorted(provided)) or 'none'})"
            )
        dependent = f"{dist.name} {dist.version}"
        for extra in ["", *extras]:
            if (key, extra) in followed:
                continue
            followed.add((key, extra))
            for line in dist.requires or []:
                dep = _parse_requirement(line, dependent)
                if dep.marker is None or dep.marker.evaluate({"extra": extra}):
                    todo.append((dep, f"{dependent}[{extra}]" if extra else dependent))
    return [chosen[k] for k in sorted(chosen)]


def _installed() -> dict[NormalizedName, Distribution]:
    found: dict[NormalizedName, Distribution] = {}
    installed_by_pip: set[NormalizedName] = set()
    for dist in distributions():
        name = dist.metadata["Name"]
        if not name:  # a leftover metadata folder without its files
            continue
        key = canonicalize_name(name)
        # The first one on sys.path is the one imports see, so that is the one to send; but a
        # source tree's own foo.egg-info shadows its editable install whenever the current
        # folder is on sys.path (python -c, pytest), so one from an installer wins over it.
        from_installer = dist.read_text("WHEEL") is not None
        if key not in found or (from_installer and key not in installed_by_pip):
            found[key] = dist
            if from_installer:
                installed_by_pip.add(key)
    return found


def _parse_requirement(text: str, source: str | None = None) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        where = f" in the metadata of {source}" if source else ""
        raise WheelError(f"cannot read the requirement {text!r}{where}: {exc}") from exc


def _check_version(req: Requirement, dist: Distribution, needed_by: str | None) -> None:
    if not req.specifier:
        return
    try:
        ok = req.specifier.contains(dist.version, prereleases=True)
    except InvalidVersion:
        return  # a legacy version string: leave the judgement to pip on the other side
    if not ok:
        who = needed_by or "the install"
        raise WheelError(f"{who} needs {req}, but {dist.name} {dist.version} is installed here")


# --------------------------------------------------------------------------------------------
# One distribution as a wheel


def wheel_for(dist: Distribution, cache: Path) -> Path:
    """A wheel of `dist` as installed here, in `cache` (reused while the installed files
    are unchanged)."""
    return _wheel_for(dist, cache, None)


def _wheel_for(dist: Distribution, cache: Path, progress: Progress | None) -> Path:
    source = _editable_source(dist)
    if source is not None:
        return _build_from_source(dist, source, cache, progress)
    return _pack_installed(dist, cache, progress)


@dataclass(frozen=True)
class _Member:
    """One installed file and the name it has inside the wheel."""

    path: Path
    arcname: str
    is_script: bool = False  # its shebang names this interpreter, which the wheel must not


def _pack_installed(dist: Distribution, cache: Path, progress: Progress | None) -> Path:
    label = f"{dist.name} {dist.version}"
    wheel_text = dist.read_text("WHEEL")
    if wheel_text is None:
        raise WheelError(
            f"{label} has no WHEEL file (an egg-style install?), so its wheel tags are unknown:"
            f" reinstall it with pip (pip install --force-reinstall {dist.name}=={dist.version})"
        )
    tags = _compressed_tags(wheel_text, label)
    record = _record_path(dist)
    dist_info = record.parent.name
    members = list(_members(dist, record.parent.parent, dist_info))

    stem = f"{_file_name(dist.name)}-{_file_version(dist.version)}"
    folder = cache / f"{_file_name(dist.name)}-{_key(record, members)}"
    target = folder / f"{stem}-{tags}.whl"
    if target.exists():
        if progress:
            progress(f"{label}: reusing {target.name}")
        return target
    if progress:
        progress(f"{label}: packing {len(members)} files")
    folder.mkdir(parents=True, exist_ok=True)
    # A crash half way must never leave something at the name that is reused later.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            _write_wheel(raw, members, f"{dist_info}/RECORD")
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _prune_older(cache, dist.name, keep=folder)
    return target


def _record_path(dist: Distribution) -> Path:
    for entry in dist.files or []:
        parts = entry.parts
        if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "RECORD":
            return Path(entry.locate())
    raise WheelError(
        f"{dist.name} {dist.version} has no RECORD of its files: reinstall it with pip"
        f" (pip install --force-reinstall {dist.name}=={dist.version})"
    )


def _members(dist: Distribution, site: Path, dist_info: str) -> Iterator[_Member]:
    """The installed files of `dist` that belong in its wheel, in the wheel's order."""
    entry_points = {ep.name for ep in dist.entry_points if ep.group.endswith("_scripts")}
    outside = _outside_places(site)
    inside: list[_Member] = []
    metadata: list[_Member] = []
    data: list[_Member] = []
    data_dir = f"{dist_info.removesuffix('.dist-info')}.data"
    for entry in dist.files or []:
        if entry.suffix == ".pyc" or "__pycache__" in entry.parts:
            continue  # compiled by pip on the other side, for its own interpreter
        # normpath, not resolve: ../../../bin must fold away without following symlinks.
        path = Path(os.path.normpath(site / entry))
        if path.is_relative_to(site):
            rel = path.relative_to(site).as_posix()
            if rel.startswith(f"{dist_info}/"):
                if rel.removeprefix(f"{dist_info}/") not in SKIPPED_DIST_INFO_FILES:
                    metadata.append(_Member(_existing(path, dist, entry), rel))
            else:
                inside.append(_Member(_existing(path, dist, entry), rel))
            continue
        for place, root in outside:
            if not path.is_relative_to(root):
                continue
            rel = path.relative_to(root).as_posix()
            if place == "scripts" and path.name in entry_points:
                break  # pip writes console scripts again from entry_points.txt
            if place == "headers":
                # pip adds the distribution's name below this folder itself on install.
                rel = rel.partition("/")[2]
            arcname = f"{data_dir}/{place}/{rel}"
            data.append(_Member(_existing(path, dist, entry), arcname, place == "scripts"))
            break
        # Anything else lies outside this environment, where the remote has no counterpart.
    # The spec wants the .dist-info folder last, so a streaming reader sees the files first.
    yield from sorted(inside, key=lambda m: m.arcname)
    yield from sorted(data, key=lambda m: m.arcname)
    yield from sorted(metadata, key=lambda m: m.arcname)


def _outside_places(site: Path) -> list[tuple[str, Path]]:
    """Where a wheel's .data folders were installed in this environment, most specific first."""
    paths = sysconfig.get_paths()
    places: list[tuple[str, Path]] = []
    for lib in ("purelib", "platlib"):
        if Path(paths[lib]) != site:
            places.append((lib, Path(paths[lib])))
    places.append(("scripts", Path(paths["scripts"])))
    # pip puts the headers of a venv install under {prefix}/include/site/pythonX.Y/{name}.
    headers = Path(
        sys.prefix, "include", "site", f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    places.append(("headers", headers))
    places.append(("data", Path(paths["data"])))
    return places


def _existing(path: Path, dist: Distribution, entry: PackagePath) -> Path:
    if not path.is_file():
        raise WheelError(
            f"{entry} of {dist.name} {dist.version} is listed in its RECORD but missing:"
            f" reinstall it (pip install --force-reinstall {dist.name}=={dist.version})"
        )
    return path


def _key(record: Path, members: list[_Member]) -> str:
    """Changes whenever the installed files may have: a reinstall rewrites RECORD, an edit in
    place changes a size or mtime. rbee's version alone would not do: it stays while code moves."""
    digest = hashlib.sha256(record.read_bytes())
    for member in members:
        stat = member.path.stat()
        digest.update(f"\0{member.arcname}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _write_wheel(raw: io.BufferedWriter, members: list[_Member], record_name: str) -> None:
    rows: list[tuple[str, str, str]] = []
    # Stored, not deflated: torch is 750 MB installed and deflating it takes minutes, while the
    # copy to the hive goes over a local network or ssh with its own compression.
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
        for member in members:
            info = zipfile.ZipInfo.from_file(member.path, member.arcname, strict_timestamps=False)
            digest = hashlib.sha256()
            size = 0
            with member.path.open("rb") as src, zf.open(info, "w") as dst:
                first = True
                while chunk := src.read(CHUNK):
                    if first and member.is_script:
                        chunk = _unbound_shebang(chunk)
                    first = False
                    digest.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
            rows.append((member.arcname, f"sha256={_b64(digest.digest())}", str(size)))
        rows.append((record_name, "", ""))
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        zf.writestr(record_name, text.getvalue())


def _unbound_shebang(chunk: bytes) -> bytes:
    """Put back the ``#!python`` that pip replaced with this interpreter's path on install, so
    pip on the other side points the script at the remote interpreter instead."""
    if not chunk.startswith(b"#!"):
        return chunk  # a binary or a script for another interpreter
    end = chunk.find(b"\n")
    first = chunk[: end if end >= 0 else len(chunk)]
    interpreter = os.path.basename(first[2:].strip().split(b" ")[0])
    if not interpreter.startswith(b"python"):
        return chunk
    return b"#!python" + (chunk[end:] if end >= 0 else b"")


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _compressed_tags(wheel_text: str, label: str) -> str:
    """The tag part of the wheel's file name, e.g. ``py2.py3-none-any``, from its Tag lines.

    A file name can only express every combination of its interpreters, ABIs and platforms;
    the Tag lines of real wheels are such combinations, so nothing is lost here."""
    found = [
        tag
        for line in wheel_text.splitlines()
        if line.startswith("Tag:")
        for tag in parse_tag(line.removeprefix("Tag:").strip())
    ]
    if not found:
        raise WheelError(f"the WHEEL file of {label} has no Tag lines")
    parts = [
        sorted({getattr(t, part) for t in found}) for part in ("interpreter", "abi", "platform")
    ]
    return "-".join(".".join(values) for values in parts)


def _file_name(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


def _file_version(version: str) -> str:
    # A local version's "+" is allowed; a "-" would split the file name in the wrong place.
    return canonicalize_version(version, strip_trailing_zero=False).replace("-", "_")


def _prune_older(cache: Path, name: str, keep: Path) -> None:
    """Drop earlier wheels of the same distribution: torch alone is 750 MB each time it moves."""
    for folder in cache.glob(f"{_file_name(name)}-*"):
        if folder != keep and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Editable installs, built again from their sources


def _editable_source(dist: Distribution) -> Path | None:
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return None
    dir_info = info.get("dir_info") if isinstance(info, dict) else None
    if not (isinstance(dir_info, dict) and dir_info.get("editable")):
        return None
    url = urlsplit(str(info.get("url", "")))
    if url.scheme != "file":
        raise WheelError(f"{dist.name} is installed editable from {url.geturl()}, not a folder")
    return Path(url2pathname(url.path))


def _build_from_source(
    dist: Distribution, source: Path, cache: Path, progress: Progress | None
) -> Path:
    """Built every time, never reused: a cheap key for "the sources changed" would have to know
    which files the build backend picks up. rbee builds in a few seconds."""
    label = f"{dist.name} {dist.version}"
    if not source.is_dir():
        raise WheelError(f"{label} is installed editable from {source}, which no longer exists")
    if progress:
        progress(f"{label}: building from {source}")
    folder = cache / f"{_file_name(dist.name)}-source"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as tmp:
        out = Path(tmp, "wheel")
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
        command += ["--disable-pip-version-check", "-w", str(out)]
        if _backend_installed(source):
            # Everything the build needs is here already, so no index is needed either.
            command += ["--no-build-isolation", "--no-index"]
        env = dict(os.environ, PIP_NO_INPUT="1")
        # setuptools leaves old files in build/lib, so a module deleted from the sources would
        # still be packed: a fresh build folder each time (other backends ignore this file).
        config = Path(tmp, "build.cfg")
        config.write_text(f"[build]\nbuild_base = {Path(tmp, 'build')}\n")
        env["DIST_EXTRA_CONFIG"] = str(config)
        result = subprocess.run([*command, str(source)], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-3000:]
            raise WheelError(f"building {label} from {source} failed:\n{output}")
        built = sorted(out.glob("*.whl"))
        if len(built) != 1:
            raise WheelError(f"building {label} from {source} gave {len(built)} wheels, not one")
        _check_same_requirements(dist, built[0], source)
        target = folder / built[0].name
        built[0].replace(target)
    for stale in folder.glob("*.whl"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def _backend_installed(source: Path) -> bool:
    """Whether the build backend and its requirements are installed, so the build can run
    without an isolated environment, which pip would fill from the index."""
    pyproject = source / "pyproject.toml"
    system: dict[str, object] = {}
    if pyproject.is_file():
        with pyproject.open("rb") as fh:
            found = tomllib.load(fh).get("build-system", {})
        system = found if isinstance(found, dict) else {}
    backend = str(system.get("build-backend", "setuptools.build_meta:__legacy__"))
    requires = system.get("requires", ["setuptools>=40.8.0"])
    if not isinstance(requires, list):
        return False
    installed = _installed()
    for text in requires:
        try:
            req = Requirement(str(text))
        except InvalidRequirement:
            return False
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        dist = installed.get(canonicalize_name(req.name))
        if dist is None or not req.specifier.contains(dist.version, prereleases=True):
            return False
    if "backend-path" in system:
        return True  # an in-tree backend, found by pip on the given path
    return importlib.util.find_spec(backend.split(":")[0].split(".")[0]) is not None


def _check_same_requirements(dist: Distribution, wheel: Path, source: Path) -> None:
    """The closure came from the installed metadata; sources that since gained a dependency
    would send a wheel that cannot be installed from the bundle."""
    with zipfile.ZipFile(wheel) as zf:
        name = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise WheelError(f"the wheel built from {source} has no METADATA")
        metadata = email.parser.BytesParser().parsebytes(zf.read(name), headersonly=True)
    built = {str(Requirement(r)) for r in metadata.get_all("Requires-Dist") or []}
    installed = {str(Requirement(r)) for r in dist.requires or []}
    if built != installed:
        changes = sorted(built ^ installed)
        raise WheelError(
            f"the dependencies of {dist.name} in {source} differ from the installed ones"
            f" ({'; '.join(changes)}): reinstall it (pip install -e {source}) first"
        )


# --------------------------------------------------------------------------------------------
# Everything an install needs


def bundle(
    names: list[str], cache: Path, progress: Callable[[str], None] | None = None
) -> list[Path]:
    """Wheels of closure(names), plus pip's own wheel (so the remote needs no ensurepip)."""
    dists = closure(names)
    wheels = [_wheel_for(dist, cache, progress) for dist in dists]
    if not any(canonicalize_name(d.name) == "pip" for d in dists):
        wheels.append(_pip_wheel(cache, progress))
    return wheels


def _pip_wheel(cache: Path, progress: Progress | None) -> Path:
    pip = _installed().get(canonicalize_name("pip"))
    if pip is not None:
        return _wheel_for(pip, cache, progress)
    # An environment made without pip (uv, venv --without-pip) still has ensurepip's copy.
    bundled = sorted(
        Path(sysconfig.get_paths()["stdlib"], "ensurepip", "_bundled").glob("pip-*.whl")
    )
    if not bundled:
        raise WheelError("pip is not installed here and ensurepip has no wheel of it")
    target = cache / "pip-bundled" / bundled[-1].name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(bundled[-1], tmp)
        tmp.replace(target)
    return target
