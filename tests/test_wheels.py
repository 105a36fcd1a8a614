"""The installation as wheels: the closure of requirements, and wheels pip installs unchanged."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.tags import parse_tag, sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from rbee_keeper.wheels import WheelError, bundle, closure, wheel_for


@pytest.fixture(autouse=True)
def no_real_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip run by these tests keeps its cache and config under the test's folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path where tests install made-up distributions."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def fake_dist(
    site: Path,
    name: str,
    requires: list[str] = [],  # noqa: B006 (never mutated)
    extras: list[str] = [],  # noqa: B006
    files: dict[str, bytes] | None = None,
    version: str = "1.0",
    with_wheel: bool = True,
    direct_url: dict[str, object] | None = None,
) -> Path:
    """Install a distribution the way pip would: its files, a dist-info and a RECORD."""
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Provides-Extra: {e}" for e in extras]
    meta += [f"Requires-Dist: {r}" for r in requires]
    written = dict(files or {})
    written[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    written[f"{dist_info}/INSTALLER"] = b"pip\n"
    if with_wheel:
        wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        written[f"{dist_info}/WHEEL"] = wheel.encode()
    if direct_url is not None:
        written[f"{dist_info}/direct_url.json"] = json.dumps(direct_url).encode()
    for rel, data in written.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    record = [f"{rel},sha256={digest(data)},{len(data)}" for rel, data in written.items()]
    record.append(f"{dist_info}/RECORD,,")
    (site / dist_info / "RECORD").write_text("\n".join(record) + "\n")
    return site / dist_info


def digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def names_of(requested: list[str]) -> list[str]:
    return [canonicalize_name(d.name) for d in closure(requested)]


def checked_record(wheel: Path) -> dict[str, bytes]:
    """The wheel's files, after checking its RECORD lists each one with its hash and size."""
    with zipfile.ZipFile(wheel) as zf:
        contents = {name: zf.read(name) for name in zf.namelist()}
    record_name = next(n for n in contents if n.endswith(".dist-info/RECORD"))
    rows = list(csv.reader(io.StringIO(contents[record_name].decode())))
    assert [record_name, "", ""] in rows
    listed = {row[0]: row for row in rows if row[0] != record_name}
    assert set(listed) == set(contents) - {record_name}
    for name, (_, hash_, size) in listed.items():
        assert hash_ == f"sha256={digest(contents[name])}", name
        assert int(size) == len(contents[name]), name
    assert list(contents)[-1] == record_name
    return contents


# --------------------------------------------------------------------------------------------
# closure


def test_closure_follows_requirements_and_nothing_else() -> None:
    found = names_of(["httpx"])
    assert {"httpx", "httpcore", "h11", "anyio", "idna", "certifi"} <= set(found)
    assert not {"torch", "click", "pluggy", "rbee", "pytest"} & set(found)
    assert found == sorted(set(found))


def test_closure_follows_an_extra_only_when_asked() -> None:
    assert "llama-cpp-python" not in names_of(["rbee"])
    assert "llama-cpp-python" in names_of(["rbee[llamacpp]"])


def test_closure_evaluates_markers_and_extras_of_dependencies(site: Path) -> None:
    fake_dist(site, "probe-leaf", requires=['pluggy; extra == "more"'], extras=["more"])
    fake_dist(
        site,
        "probe-root",
        requires=[
            "h11",
            'no-such-thing-anywhere; python_version < "3"',
            'probe-leaf; extra == "leaf"',
            'probe-leaf[more]; extra == "more"',
        ],
        extras=["leaf", "more"],
    )
    assert names_of(["probe-root"]) == ["h11", "probe-root"]
    assert names_of(["Probe_Root[leaf]"]) == ["h11", "probe-leaf", "probe-root"]
    assert "pluggy" not in names_of(["probe-root[leaf]"])
    assert "pluggy" in names_of(["probe-root[more]"])
    assert "pluggy" in names_of(["probe-root[leaf,more]"])


def test_an_unknown_name_is_named() -> None:
    with pytest.raises(WheelError, match="no-such-dist-here is not installed"):
        closure(["no-such-dist-here"])


def test_a_missing_dependency_names_who_needs_it(site: Path) -> None:
    fake_dist(site, "probe-needy", requires=["h11", "absent-dependency>=2"])
    with pytest.raises(WheelError) as info:
        closure(["probe-needy"])
    assert "absent-dependency is not installed" in str(info.value)
    assert "probe-needy 1.0" in str(info.value)


def test_a_wrong_extra_or_version_is_refused(site: Path) -> None:
    fake_dist(site, "probe-old", requires=["h11>=999"], extras=["yes"])
    with pytest.raises(WheelError, match="no extra nope"):
        closure(["probe-old[nope]"])
    with pytest.raises(WheelError, match=r"probe-old 1.0 needs h11>=999, but h11 .* is installed"):
        closure(["probe-old"])


# --------------------------------------------------------------------------------------------
# wheel_for, normal installs


def test_a_wheel_installs_the_same_files(tmp_path: Path) -> None:
    dist = distribution("h11")
    wheel = wheel_for(dist, tmp_path / "cache")
    assert wheel.name == f"h11-{dist.version}-py3-none-any.whl"
    contents = checked_record(wheel)
    assert not [n for n in contents if n.endswith(".pyc") or n.endswith("/INSTALLER")]

    target = tmp_path / "target"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
    subprocess.run([*install, "--no-cache-dir", "--target", str(target), str(wheel)], check=True)
    originals = [f for f in dist.files or [] if f.parts[0] == "h11" and f.suffix == ".py"]
    assert originals
    for original in originals:
        assert (target / original).read_bytes() == Path(original.locate()).read_bytes()
    imported = subprocess.run(
        [sys.executable, "-c", "import h11; print(h11.__file__)"],
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(imported.stdout.strip()).is_relative_to(target)


def test_a_wheel_is_reused_while_the_files_stay(tmp_path: Path) -> None:
    dist = distribution("pluggy")
    first = wheel_for(dist, tmp_path)
    written = first.stat().st_mtime_ns
    again = wheel_for(dist, tmp_path)
    assert again == first
    assert again.stat().st_mtime_ns == written
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [first.name]


def test_a_changed_file_makes_a_new_wheel_of_the_same_version(site: Path, tmp_path: Path) -> None:
    fake_dist(site, "probe-code", files={"probe_code.py": b"ANSWER = 1\n"})
    cache = tmp_path / "cache"
    old = wheel_for(distribution("probe-code"), cache)
    (site / "probe_code.py").write_bytes(b"ANSWER = 42  # changed, version not\n")
    new = wheel_for(distribution("probe-code"), cache)
    assert new != old and new.name == old.name
    assert checked_record(new)["probe_code.py"] == b"ANSWER = 42  # changed, version not\n"
    assert not old.exists()  # the stale one does not pile up


def test_a_binary_wheel_keeps_its_tags(tmp_path: Path) -> None:
    dist = distribution("markupsafe")
    wheel = wheel_for(dist, tmp_path)
    name, version, _, tags = parse_wheel_filename(wheel.name)
    assert (name, str(version)) == ("markupsafe", dist.version)
    lines = (dist.read_text("WHEEL") or "").splitlines()
    expected = {t for line in lines if line.startswith("Tag:") for t in parse_tag(line[4:].strip())}
    assert tags == expected
    assert all(t.interpreter.startswith("cp") for t in tags)
    assert tags & set(sys_tags())
    contents = checked_record(wheel)
    assert [n for n in contents if n.endswith(".so")]


def test_what_the_installer_wrote_is_left_out(site: Path, tmp_path: Path) -> None:
    dist_info = fake_dist(site, "probe-tool", files={"probe_tool.py": b"def main(): pass\n"})
    # A console script pip wrote outside site-packages: pip writes it again on the other side.
    record = dist_info / "RECORD"
    record.write_text(record.read_text() + "../bin/probe-tool,sha256=x,1\n")
    (site.parent / "bin").mkdir()
    (site.parent / "bin" / "probe-tool").write_text("#!/usr/bin/python\n")
    (dist_info / "REQUESTED").write_text("")
    contents = checked_record(wheel_for(distribution("probe-tool"), tmp_path / "cache"))
    assert list(contents) == [
        "probe_tool.py",
        "probe_tool-1.0.dist-info/METADATA",
        "probe_tool-1.0.dist-info/WHEEL",
        "probe_tool-1.0.dist-info/RECORD",
    ]


def test_an_install_without_wheel_metadata_is_refused(site: Path, tmp_path: Path) -> None:
    fake_dist(site, "probe-egg", with_wheel=False)
    with pytest.raises(WheelError, match=r"probe-egg 1\.0 has no WHEEL file"):
        wheel_for(distribution("probe-egg"), tmp_path)


def test_a_file_missing_from_the_install_is_refused(site: Path, tmp_path: Path) -> None:
    fake_dist(site, "probe-broken", files={"probe_broken.py": b"x = 1\n"})
    (site / "probe_broken.py").unlink()
    with pytest.raises(WheelError, match=r"probe_broken.py of probe-broken 1.0 .* missing"):
        wheel_for(distribution("probe-broken"), tmp_path)


# --------------------------------------------------------------------------------------------
# wheel_for, editable installs


def editable_project(site: Path, tmp_path: Path, dependencies: list[str]) -> Path:
    source = tmp_path / "project"
    source.mkdir()
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "probe-editable"\nversion = "0.3.0"\n'
        f"dependencies = {json.dumps(dependencies)}\n"
        '[tool.setuptools]\npy-modules = ["probe_editable"]\n'
    )
    (source / "probe_editable.py").write_text("WHERE = 'sources'\n")
    fake_dist(
        site,
        "probe-editable",
        version="0.3.0",
        requires=["h11"],
        direct_url={"url": source.as_uri(), "dir_info": {"editable": True}},
    )
    return source


def test_an_editable_install_is_built_from_its_sources(site: Path, tmp_path: Path) -> None:
    source = editable_project(site, tmp_path, ["h11"])
    wheel = wheel_for(distribution("probe-editable"), tmp_path / "cache")
    assert wheel.name == "probe_editable-0.3.0-py3-none-any.whl"
    assert checked_record(wheel)["probe_editable.py"] == b"WHERE = 'sources'\n"
    assert not (source / "build").exists()  # a stale build/lib would pack deleted modules


def test_sources_with_other_dependencies_than_installed_are_refused(
    site: Path, tmp_path: Path
) -> None:
    editable_project(site, tmp_path, ["h11", "pluggy"])
    with pytest.raises(WheelError, match=r"pluggy.*reinstall it"):
        wheel_for(distribution("probe-editable"), tmp_path / "cache")


# --------------------------------------------------------------------------------------------
# bundle


def test_a_bundle_brings_pip_and_runs_it_from_its_wheel(tmp_path: Path) -> None:
    said: list[str] = []
    wheels = bundle(["h11"], tmp_path, progress=said.append)
    names = sorted(parse_wheel_filename(w.name)[0] for w in wheels)
    assert names == ["h11", "pip"]
    assert any("packing" in line for line in said)
    pip_wheel = next(w for w in wheels if w.name.startswith("pip-"))
    version = subprocess.run(
        [sys.executable, f"{pip_wheel}/pip", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
    assert str(pip_wheel) in version.stdout

    said.clear()
    assert bundle(["h11"], tmp_path, progress=said.append) == wheels
    assert all("reusing" in line for line in said)
