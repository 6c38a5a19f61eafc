"""README's set-up lines are the ones CI runs, and what it says the tests need is what CI installs."""

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set up and run", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_two_commands_set_up_and_the_second_is_the_ci_test_command():
    lines = setup_lines()
    assert len(lines) == 2
    install, test = (part.strip() for part in lines[1].split("&&"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_installs = [shlex.split(line) for line in ci.splitlines() if "pip install" in line and not line.lstrip().startswith("#")]
    assert any([w for w in words if w != "-q"][-3:] == shlex.split(install)[-3:] for words in ci_installs)
    assert test in ci


def test_the_tools_the_tests_need_are_named_where_ci_installs_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for package in ("chromium", "fonts-noto-color-emoji"):
        assert package in readme and package in ci
