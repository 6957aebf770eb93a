"""Credentials come from the settings object only; the sole literals are the documented
local-development defaults in config/settings.py (docker-compose.yml's come from `.env`)."""

from __future__ import annotations

import ast
import json
import re
import subprocess

import pytest
import yaml

from config.settings import INSECURE_DEFAULTS, REPO_ROOT

SECRET_KEYWORDS = re.compile(r"password|passwd|secret|token|api_key", re.IGNORECASE)
COMPOSE_VALUE = re.compile(r"\$\{(?P<name>[A-Z_]+):\?[^}]*\}")


def tracked(suffix: str) -> list:
    names = subprocess.run(["git", "ls-files", f"*{suffix}"], cwd=REPO_ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return [REPO_ROOT / name for name in names]


def literal_secrets(source: str) -> list[str]:
    """String literals in Python source that are a default secret, or are passed to a
    keyword or assigned to a name that says it holds a secret."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and node.value in INSECURE_DEFAULTS.values():
            found.append(f"line {node.lineno}: {node.value!r}")
        if isinstance(node, ast.keyword) and node.arg and SECRET_KEYWORDS.search(node.arg) \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            found.append(f"line {node.lineno}: {node.arg}={node.value.value!r}")
    return found


def test_the_scan_finds_a_secret_literal():
    assert literal_secrets('connect(password="hunter2")') and literal_secrets(f'x = "{INSECURE_DEFAULTS["MINIO_SECRET_KEY"]}"')
    assert not literal_secrets("connect(password=settings.mysql_password.get_secret_value())")


def test_no_product_module_but_the_settings_module_holds_a_secret_literal():
    """Tests are left out: they pass made-up secrets on purpose."""
    product = [path for path in tracked(".py") if path.relative_to(REPO_ROOT).parts[0] != "tests"]
    offenders = {str(path.relative_to(REPO_ROOT)): found for path in product
                 if path != REPO_ROOT / "config" / "settings.py" and (found := literal_secrets(path.read_text()))}

    assert offenders == {}


@pytest.mark.parametrize("connector", sorted((REPO_ROOT / "config" / "connectors").glob("*.json")), ids=lambda p: p.name)
def test_connector_configs_take_passwords_from_connects_secrets_file(connector):
    config = json.loads(connector.read_text())
    secrets = {key: value for key, value in config.items() if SECRET_KEYWORDS.search(key)}

    assert secrets and all(re.fullmatch(r"\$\{file:\$\{CONNECTOR_SECRETS_FILE\}:[a-z.]+\}", value)
                           for value in secrets.values()), secrets


def compose_secrets() -> list[tuple[str, str]]:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    found = []
    for environment in [compose.get("x-settings", {}), *(s.get("environment", {}) for s in compose["services"].values())]:
        if isinstance(environment, dict):
            found += [(key, str(value)) for key, value in environment.items()
                      if SECRET_KEYWORDS.search(key) and not key.endswith("_FILE")]  # a path to secrets
    return found


def test_docker_compose_passwords_are_variables_without_a_default():
    secrets = compose_secrets()

    assert secrets
    for key, value in secrets:
        assert COMPOSE_VALUE.match(value), f"{key}: {value!r} is not ${{VARIABLE:?message}}"


# A password on a client's command line: any user of the machine reads it in the process list.
PASSWORD_ARGUMENT = re.compile(r"""mysql[^\n]*\s-p["'$\w]|--password[= ]["'$]|redis-cli[^\n]*\s(-u|-a)\s|--requirepass\s""")


def test_the_scan_finds_a_password_on_a_command_line():
    for line in ('mysql -uroot -p"$MYSQL_ROOT_PASSWORD" db', "redis-cli -u \"$URL\" GET k", "redis-server --requirepass x"):
        assert PASSWORD_ARGUMENT.search(line), line
    assert not PASSWORD_ARGUMENT.search('mysql -h127.0.0.1 -P3306 -u"$SHOP" project_db -e "SELECT 1"')


def test_no_doc_or_script_puts_a_password_on_a_command_line():
    texts = [*tracked(".md"), *tracked(".sh"), REPO_ROOT / "Makefile", REPO_ROOT / "Procfile", *tracked(".yml")]
    found = [f"{path.relative_to(REPO_ROOT)}: {line.strip()}" for path in texts
             for line in path.read_text().splitlines() if PASSWORD_ARGUMENT.search(line)]

    assert found == []
