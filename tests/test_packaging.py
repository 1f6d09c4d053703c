"""The package a user installs: metadata that says what CI tests, and a wheel and an
sdist built by the project's own build backend (hatchling, in the ``test`` extra) that
carry the LICENSE, the typing marker and, for the sdist, everything the tests need.

The wheel and the sdist are built once per session by calling the backend's PEP 517
hooks in a subprocess (no build isolation, no network: about a second).
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
NAME_VERSION = f"{PROJECT['name']}-{PROJECT['version']}"


def ci_versions() -> list[str]:
    """The Python versions ``.ci/run`` tests by default (its ``CI_PYTHONS``)."""
    match = re.search(r"CI_PYTHONS:-([0-9. ]+)\}", (ROOT / ".ci" / "run").read_text())
    assert match, ".ci/run no longer names its default Python versions"
    return match.group(1).split()


def test_ci_tests_every_python_the_metadata_claims() -> None:
    versions = ci_versions()
    claimed = sorted(
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    assert claimed == versions
    spec = SpecifierSet(PROJECT["requires-python"])
    major, low = map(int, versions[0].split("."))
    high = int(versions[-1].split(".")[1])
    assert [f"{major}.{minor}" in spec for minor in range(low - 1, high + 2)] == (
        [False] + [True] * (high - low + 1) + [False]
    )
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in versions


def test_classifiers() -> None:
    classifiers = set(PROJECT["classifiers"])
    assert {
        "Development Status :: 3 - Alpha",
        "Framework :: AsyncIO",
        "Framework :: Trio",
        "Operating System :: POSIX :: Linux",
        "Typing :: Typed",
    } <= classifiers
    # The license is the SPDX expression (PEP 639), which supersedes License classifiers.
    assert PROJECT["license"] == "MIT"
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert PROJECT["classifiers"] == sorted(PROJECT["classifiers"])


def test_license_file() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 The asocket developers\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
    assert PROJECT["license-files"] == ["LICENSE"]


def test_test_extra_has_what_the_tests_import() -> None:
    names = {
        re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        for req in PROJECT["optional-dependencies"]["test"]
    }
    assert {
        "pytest",
        "pytest-asyncio",
        "pytest-timeout",
        "uvloop",
        "anyio",
        "trio",
        "httpcore",
        "httpx",
        "trustme",
        "hypothesis",
        "hatchling",
    } <= names


# -- the built artifacts --------------------------------------------------------------


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with the wheel and the sdist, built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    backend = PYPROJECT["build-system"]["build-backend"]
    code = (
        f"import {backend} as b, sys; "
        "print(b.build_wheel(sys.argv[1])); print(b.build_sdist(sys.argv[1]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    yield out


def metadata(text: str) -> Message:
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)


def check_metadata(meta: Message) -> None:
    assert meta["Name"] == PROJECT["name"]
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta.get_all("Classifier") == PROJECT["classifiers"]
    assert SpecifierSet(meta["Requires-Python"]) == SpecifierSet(PROJECT["requires-python"])


def test_wheel(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"{NAME_VERSION}.dist-info"
        assert zf.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        check_metadata(metadata(zf.read(f"{info}/METADATA").decode()))
    package = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "asocket").rglob("*")
        if p.is_file() and p.suffix in (".py", ".typed") and "__pycache__" not in p.parts
    }
    assert "asocket/py.typed" in package
    assert {n for n in names if not n.startswith(info)} == package


def test_sdist_runs_its_tests(dist: Path) -> None:
    """The sdist holds the package, LICENSE, and every file the test suite reads:
    tests/ whole (conftest and helpers included), the scripts in docs/snippets and
    the examples the tests drive, and .ci/run."""
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.removeprefix(f"{NAME_VERSION}/") for n in tf.getnames()}
        member = tf.extractfile(f"{NAME_VERSION}/LICENSE")
        assert member is not None and member.read() == (ROOT / "LICENSE").read_bytes()
        pkg_info = tf.extractfile(f"{NAME_VERSION}/PKG-INFO")
        assert pkg_info is not None
        check_metadata(metadata(pkg_info.read().decode()))

    def files(folder: str) -> set[str]:
        return {
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }

    for folder in ("asocket", "tests", "docs", "examples"):
        assert files(folder) <= names, folder
    assert {"tests/conftest.py", "tests/_async_helpers.py", "tests/_diff.py"} <= names
    assert {"pyproject.toml", "README.md", "LICENSE", ".ci/run", "PKG-INFO"} <= names
