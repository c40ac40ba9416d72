"""pyproject.toml and environment.yml pin the same versions; the README names the two commands."""
from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)\s*$")


def parse_pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        m = PIN.match(line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def pyproject_pins() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + [r for extra in meta["optional-dependencies"].values() for r in extra]
    return parse_pins(reqs)


def environment_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_lists, "environment.yml has no pip: section"
    return parse_pins([str(x) for x in pip_lists[0]])


def test_every_pyproject_requirement_is_pinned():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + [r for extra in meta["optional-dependencies"].values() for r in extra]
    unpinned = [r for r in reqs if not PIN.match(r)]
    assert not unpinned, f"pyproject.toml requirements without an exact == pin: {unpinned}"


def test_environment_yml_agrees_with_pyproject():
    py, env = pyproject_pins(), environment_pins()
    assert py == env, (
        "pins differ between pyproject.toml and environment.yml: "
        f"only in pyproject {sorted(set(py) - set(env))}, only in environment.yml {sorted(set(env) - set(py))}, "
        f"different versions {sorted(k for k in set(py) & set(env) if py[k] != env[k])}")


def test_required_pins():
    py = pyproject_pins()
    assert py["torch"] == "2.14.1" and py["torchvision"] == "0.29.1"
    assert py["jupyter-book"] == "1.0.4.post1"


def test_pin_parser_reads_versions():
    assert parse_pins(["torch==2.14.1", " numpy == 2.4.6", "-e .", "pandas>=2"]) == {
        "torch": "2.14.1", "numpy": "2.4.6"}


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
