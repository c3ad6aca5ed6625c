"""The house rules the code keeps: dependencies that point one way (import-linter's contracts in pyproject.toml,
run by `make lint`), no private names of other projects, and work queued by task name reaching a registered
task."""

import ast
import importlib
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from django.utils.deprecation import RemovedInDjango60Warning, RemovedInDjango61Warning

from tests.helpers import WARNINGS_AS_ERRORS

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("newsletter", "papers", "subscribers")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "", "PYTHONWARNINGS": WARNINGS_AS_ERRORS},
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
    env["PYTHONWARNINGS"] = WARNINGS_AS_ERRORS
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.stdout.strip() == "3", result.stderr


# Where private names are looked for, and whose are ours to use.
SCANNED = ("newsletter", "papers", "subscribers", "bench", "tests")
OWN_PACKAGES = frozenset(SCANNED)
# Underscore names other projects document as public: Django's Model._meta API and managers, namedtuple's methods.
DOCUMENTED = frozenset({"_meta", "_default_manager", "_base_manager", "_replace", "_asdict", "_fields", "_make"})
NAME_FUNCTIONS = ("getattr", "setattr", "hasattr", "delattr")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and name not in DOCUMENTED


def own_names(tree: ast.Module) -> set[str]:
    """Names in this module that are ours: self/cls, our modules and what they export, the module's own
    classes and functions."""
    names = {"self", "cls"}
    for node in tree.body if isinstance(tree, ast.Module) else []:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in OWN_PACKAGES}
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in OWN_PACKAGES):
            names |= {a.asname or a.name for a in node.names}
    return names


def defined_names(tree: ast.AST) -> set[str]:
    """Every name the code binds: functions, classes, arguments, assignment targets (`x = `, `self.x = `)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.id if isinstance(node, ast.Name) else node.attr)
    return names


def is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def is_ours(node: ast.expr | None, ours: set[str]) -> bool:
    """self, cls, a name of ours, or a module of ours by its dotted path (`newsletter.mail`)."""
    if isinstance(node, ast.Name):
        return node.id in ours
    dotted = node
    while isinstance(dotted, ast.Attribute) and not dotted.attr.startswith("_"):
        dotted = dotted.value
    return isinstance(dotted, ast.Name) and dotted.id in OWN_PACKAGES and dotted.id in ours and dotted is not node


def private_uses(source: str, defined: set[str] | None = None) -> list[str]:
    """Every use of another project's private name in `source`: `x._name` on anything but self, cls or one of
    our own modules and classes; `self._name` where `_name` is nowhere bound in our code (`defined`; default:
    in `source`), so inherited from a library class; getattr(x, "_name") and the like; `from library import
    _name`."""
    tree = ast.parse(source)
    ours = own_names(tree)
    defined = defined_names(tree) if defined is None else defined
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and not is_ours(node.value, ours):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Attribute)
            and is_private(node.attr)
            and is_self(node.value)
            and node.attr not in defined
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)} (inherited from another project)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in NAME_FUNCTIONS:
            target, name = [*node.args, None, None][:2]
            private = isinstance(name, ast.Constant) and isinstance(name.value, str) and is_private(name.value)
            if private and not is_ours(target, ours):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and not node.level:
            if (node.module or "").split(".")[0] not in OWN_PACKAGES:
                modules = [node.module or "", *(a.name for a in node.names)]
                if any(is_private(part) for module in modules for part in module.split(".")):
                    found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if any(map(is_private, a.name.split(".")))]
    return found


def our_sources() -> dict[Path, str]:
    files = [path for package in SCANNED for path in sorted((ROOT / package).rglob("*.py"))]
    return {path: path.read_text() for path in files if "migrations" not in path.parts}


def test_no_private_names_of_other_projects():
    sources = our_sources()
    assert len(sources) > 100  # the scan reads the tree, not an empty folder
    defined = set().union(*(defined_names(ast.parse(source)) for source in sources.values()))
    found = {
        str(path.relative_to(ROOT)): uses for path, source in sources.items() if (uses := private_uses(source, defined))
    }
    assert found == {}


def overridden_private_methods(module_name: str, source: str) -> list[str]:
    """Methods named `_x` in the module's classes that a base class from another project also has: overriding
    a private hook (Django's EmailBackend._send) depends on it as much as calling it does."""
    module = importlib.import_module(module_name)
    found = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(module, node.name)
        for method in (m.name for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)):
            theirs = [b for b in cls.__mro__[1:] if b is not object and b.__module__.split(".")[0] not in OWN_PACKAGES]
            if is_private(method) and any(method in vars(base) for base in theirs):
                found.append(f"{node.name}.{method}")
    return found


def test_no_private_method_of_another_project_is_overridden():
    found = {}
    for path, source in our_sources().items():
        if path.parts[-2] != "tests" and "class " in source:  # bench/ and the packages; tests are not imported
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            if uses := overridden_private_methods(name, source):
                found[name] = uses
    assert found == {}


def test_the_override_scan_finds_an_overridden_private_hook(tmp_path, monkeypatch):
    (tmp_path / "backend_module.py").write_text(HOOK_OVERRIDE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert overridden_private_methods("backend_module", HOOK_OVERRIDE) == ["Backend._send"]


HOOK_OVERRIDE = """
from django.core.mail.backends.smtp import EmailBackend

class Backend(EmailBackend):
    def _send(self, message):
        return True

    def _ours(self):
        return None
"""


@pytest.mark.parametrize(
    "snippet",
    [
        "from django.core.mail import message\nmessage.sanitize_address\nbackend._cache._get_connection_pool()",
        "import smtplib\nsmtplib.SMTP()._rset()",
        "def f(db):\n    return db._prepare_cursor(None)",
        "def f(paper):\n    paper._state.adding = False",
        "super()._send(message)",
        "import smtplib\nclass Client(smtplib.SMTP):\n    def f(self):\n        self._rset()",
        "class A:\n    def f(self):\n        return self.client._pool",
        "value = getattr(client, '_pool')",
        "from django.core.mail.message import _private",
        "from kombu.transport._redis import Channel",
    ],
)
def test_the_private_name_scan_finds_each_kind_of_use(snippet):
    assert private_uses(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "class A:\n    _y = 1\n\n    def f(self):\n        self._x = 2\n        return self._x, A._y",
        "from papers import embeddings\nembeddings._loads.cache_clear()",
        "from papers.models import Paper\nPaper._meta.db_table, Paper._default_manager",
        "import newsletter.mail\nnewsletter.mail._reset",
        "def f(x):\n    return x.__class__.__name__, point._replace(x=1)",
        "def _helper():\n    pass\n_helper()",
    ],
)
def test_the_private_name_scan_lets_our_own_and_documented_names_pass(snippet):
    assert private_uses(snippet) == []


@pytest.mark.parametrize("category", [DeprecationWarning, RemovedInDjango60Warning, RemovedInDjango61Warning])
def test_deprecations_are_errors_in_the_suite(category):
    with pytest.raises(category):
        warnings.warn("this API goes away in the next release", category, stacklevel=1)


@pytest.mark.parametrize("category", ["DeprecationWarning", "PendingDeprecationWarning"])
def test_deprecations_are_errors_in_the_processes_the_tests_start(category):
    """Workers and manage.py runs inherit the environment, PYTHONWARNINGS included (tests/conftest.py)."""
    code = f"import warnings; warnings.warn('this API goes away', {category}); print('went on')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "went on" not in result.stdout
    assert category in result.stderr
