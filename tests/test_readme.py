"""The README's commands are the ones CI runs."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _commands():
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```bash\n# ([^\n]+)\n([^\n]+)\n```", text)


def test_readme_has_exactly_two_commands():
    assert [c[0].split(":")[0] for c in _commands()] == ["main job", "tests"]


def test_ci_runs_the_readme_test_command():
    test_cmd = dict((k.split(":")[0], v) for k, v in _commands())["tests"]
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert test_cmd in ci.splitlines()
