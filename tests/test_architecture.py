"""The house rules the code keeps: dependencies that point one way (import-linter's contracts in pyproject.toml,
run by `make lint`), and work queued by task name reaching a registered task."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("newsletter", "papers", "subscribers")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120, env={"PATH": ""}
    )


@pytest.fixture
def copy_of_the_code(tmp_path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_code_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("papers/text.py", "from newsletter import models", "never import newsletter"),
        ("papers/text.py", "import subscribers.models", "papers/ and subscribers/ never import newsletter/"),
        ("newsletter/sending/ledger.py", "from newsletter import tasks", "No import cycles anywhere"),
        ("newsletter/emails/mime.py", "from newsletter.sending import delivery", "edges over services"),
        ("papers/ranking/foryou.py", "from papers import admin", "papers: edges over services"),
        ("papers/ranking/index.py", "from papers.ranking import mmr", "papers.ranking: For you over picks"),
    ],
)
def test_an_import_against_the_layers_fails_the_lint(copy_of_the_code, module, line, contract):
    path = copy_of_the_code / module
    path.write_text(f"{path.read_text()}\n\ndef breaking_the_rule() -> None:\n    {line}  # noqa\n")
    result = lint_imports(copy_of_the_code)
    assert result.returncode != 0
    assert contract in result.stdout and "BROKEN" in result.stdout


def test_every_queued_task_name_is_a_registered_task_in_a_fresh_process():
    """Services queue by name (newsletter/jobs.py); a command process, which has not imported the task modules,
    finds each task as a worker does."""
    code = (
        "import django; django.setup()\n"
        "from newsletter import jobs\n"
        "names = [v for k, v in vars(jobs).items() if k.isupper()]\n"
        "print(sorted(jobs.task(n).name for n in names) == sorted(names) and len(names))\n"
    )
    env = {"DJANGO_SETTINGS_MODULE": "newsletter.config.settings", "PATH": "", "RANKING_EMBEDDINGS": "off"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.stdout.strip() == "3", result.stderr
