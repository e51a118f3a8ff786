"""Remote packages: %%remote --packages and %remote_pip, offline, with a wheel built here.

The target is an ssh engine whose Python is a fresh virtual environment that sees this
environment's packages (ipykernel, pip) through a .pth file, so installs land in that
environment and never in the project's own.
"""
from __future__ import annotations

import base64
import hashlib
import site
import subprocess
import sys
import zipfile

import pytest
from IPython.utils.capture import capture_output

import remote_magics
from remote_magics import packages
from remote_magics.errors import PackageInstallError

PACKAGE = "rmtestpkg"


def build_wheel(directory, version: str) -> None:
    """A minimal pure-Python wheel of ``rmtestpkg``, written by hand (no build backend needed)."""
    dist = f"{PACKAGE}-{version}.dist-info"
    files = {
        f"{PACKAGE}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: remote_magics tests\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(directory / f"{PACKAGE}-{version}-py3-none-any.whl", "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wheels")
    build_wheel(directory, "1.0")
    return directory


@pytest.fixture(scope="module")
def pkg_target(shell, sshd, tmp_path_factory):
    """An ssh engine running in a fresh venv layered over this environment's packages."""
    env = tmp_path_factory.mktemp("pkgenv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True,
                   timeout=120)
    site_dir = next(env.glob("lib/python*/site-packages"))
    (site_dir / "_parent_env.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages()))
    registry = remote_magics.registry
    previous = registry.current
    target = remote_magics.connect("ssh://rmtest", name="pkgs", python=str(env / "bin" / "python"),
                                   ssh_options=sshd.options, timeout=60)
    registry.current = previous if previous in registry.targets else target.name
    yield target
    registry.remove("pkgs")


@pytest.fixture
def offline(shell, wheels):
    magics = shell.magics_manager.registry["RemoteMagics"]
    saved = list(magics.pip_options)
    magics.pip_options = ["--no-index", "--find-links", str(wheels)]
    yield
    magics.pip_options = saved


def test_requirements_split_on_commas_but_keep_version_clauses():
    assert packages.parse_requirements("pytz>=2023,numpy") == ["pytz>=2023", "numpy"]
    assert packages.parse_requirements("numpy>=1.20,<3, pytz") == ["numpy>=1.20,<3", "pytz"]


def test_packages_are_installed_once_before_the_cell_with_pip_output_live(shell, pkg_target,
                                                                          offline):
    cell = (f'%%remote --target pkgs --packages "{PACKAGE}==1.0"\n'
            f"import {PACKAGE}\npkg_version = {PACKAGE}.VERSION")
    with capture_output() as first:
        res = shell.run_cell(cell, store_history=False)
    assert res.error_in_exec is None
    assert shell.user_ns["pkg_version"] == "1.0"
    assert f"Successfully installed {PACKAGE}-1.0" in first.stdout
    with capture_output() as second:  # once per target: no pip at all the second time
        assert shell.run_cell(cell, store_history=False).error_in_exec is None
    assert "pip" not in second.stdout.lower() and "Requirement" not in second.stdout


def test_an_already_satisfied_requirement_costs_no_install(shell, pkg_target, offline):
    with capture_output() as out:
        res = shell.run_cell('%%remote --target pkgs --packages "cloudpickle>=1"\nok = 1',
                             store_history=False)
    assert res.error_in_exec is None and shell.user_ns["ok"] == 1
    assert out.stdout == ""


def test_failing_install_stops_the_cell_with_pips_error(shell, pkg_target, offline):
    shell.user_ns.pop("should_not_exist", None)
    with capture_output():
        res = shell.run_cell(f'%%remote --target pkgs --packages "{PACKAGE}==9.9"\n'
                             "should_not_exist = 1", store_history=False)
    assert isinstance(res.error_in_exec, PackageInstallError)
    assert "No matching distribution" in str(res.error_in_exec)
    assert "should_not_exist" not in shell.user_ns


def test_remote_pip_runs_pip_in_the_targets_environment(shell, pkg_target, wheels):
    with capture_output() as out:
        shell.run_line_magic(
            "remote_pip", f"pkgs install --no-index --find-links {wheels} {PACKAGE}")
    assert "Requirement already satisfied" in out.stdout
    with capture_output() as out:
        shell.run_line_magic("remote_pip", "pkgs list")
    assert PACKAGE in out.stdout
    ns: dict = {}
    pkg_target.run(f"import {PACKAGE}\nwhere = {PACKAGE}.__file__", ns, on_output=None)
    assert ns["where"].startswith(pkg_target.details["python"].rsplit("/bin/", 1)[0])
    with pytest.raises(PackageInstallError, match="no-such-command|unknown command"):
        with capture_output():
            shell.run_line_magic("remote_pip", "pkgs no-such-command")


def test_libraries_of_an_environment_the_engines_venv_is_layered_over_are_not_yours(pkg_target):
    # the parent's site-packages comes by a .pth file's site.addsitedir: counted as modules of
    # yours, every library a run imported went back to the notebook with its state (an
    # `import sympy` took 37 s, every later run 0.7 s more)
    ns: dict = {}
    pkg_target.run("import idna\nfrom remote_magics.wire import serialize\n"
                   "own = sorted(m.__name__ for m in serialize.own_modules())\n"
                   "where = idna.__file__", ns, on_output=None)
    assert not ns["where"].startswith(pkg_target.details["python"].rsplit("/bin/", 1)[0])
    assert ns["own"] == []
