"""The layout keeps its promises: DynamoDB syntax lives only in chalicelib/db, and the layers
import downwards only (api -> services -> db -> domain; pipeline and jobs beside services)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]

# What only the table layer may write: expression functions, update clauses with
# placeholders, the request parameters that carry expressions, index attribute names and
# raw transaction entries.
DYNAMODB_SYNTAX = re.compile(
    r"attribute_(?:not_)?exists\s*\(|begins_with\s*\(|if_not_exists\s*\(|list_append\s*\("
    r"|\b(?:SET|ADD|REMOVE)\s+[#\w]+\s*(?:=|:)"
    r"|\b(?:Condition|Update|KeyCondition|Filter|Projection)Expression\b|ExpressionAttribute"
    r"|\bGSI\d(?:PK|SK)\b|\bTransactItems\b|^(?:Put|Update|Delete|ConditionCheck)$"
    r"|\b\w+\s*(?:=|<>|<|>|<=|>=)\s*:\w+")


def dynamodb_syntax(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every string literal in `source` that carries DynamoDB syntax."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING:
            try:
                text = ast.literal_eval(token.string)
            except (ValueError, SyntaxError):  # an f-string: check its literal text
                text = token.string
            if isinstance(text, str) and DYNAMODB_SYNTAX.search(text):
                found.append((token.start[0], token.string[:80]))
    return found


def test_the_check_recognises_dynamodb_syntax() -> None:
    flagged = [
        '"attribute_not_exists(PK)"', '"SET a = :a"', '"ADD active_sessions :delta"',
        '"version = :expected"', '{"Put": {}}', '"GSI1PK"', 'f"{index}PK = :pk"',
        '"UpdateExpression"', '"PK = :pk AND begins_with(SK, :prefix)"',
    ]
    for literal in flagged:
        assert dynamodb_syntax(f"x = {literal}\n"), literal
    for literal in ['"Session was modified; retry"', '"session"', '"a = b"', '"SET-UP done"',
                    '"ADD to list"', '"12:30"']:
        assert not dynamodb_syntax(f"x = {literal}\n"), literal


def test_dynamodb_syntax_appears_only_in_the_table_layer() -> None:
    outside = [path for path in SHIPPED if "db" not in path.relative_to(ROOT).parts[1:2]]
    assert len(outside) > 20  # it really looks at the code
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}" for path in outside
                 for line, text in dynamodb_syntax(path.read_text())]
    assert offenders == [], "\n".join(offenders)


# Which package may import which (module paths under chalicelib; app.py may import anything).
ALLOWED = {
    "domain": {"domain"},
    "db": {"domain", "db", "config"},
    "services": {"domain", "db", "services", "pipeline", "config", "lru", "observability", "sealing"},
    "pipeline": {"domain", "db", "pipeline", "inbox", "config", "observability", "sealing"},  # inbox: forwarding
    "jobs": {"domain", "db", "services", "jobs", "config", "observability"},
    "inbox": {"domain", "db", "inbox", "config", "lru", "sealing"},
    "api": {"domain", "db", "services", "pipeline", "jobs", "inbox", "api", "config",
            "observability"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chalicelib"):
            parts = node.module.split(".")
            if len(parts) == 1:  # from chalicelib import config
                names.update(alias.name for alias in node.names)
            else:
                names.add(parts[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("chalicelib."))
    return names - {"__version__"}


def test_layers_import_downwards_only() -> None:
    wrong = []
    for path in SHIPPED:
        parts = path.relative_to(ROOT).parts
        if parts[0] != "chalicelib" or len(parts) < 3:
            continue
        layer = parts[1]
        extra = imported_packages(path) - ALLOWED[layer]
        if extra:
            wrong.append(f"{path.relative_to(ROOT)} imports {sorted(extra)}")
    assert wrong == [], "\n".join(wrong)
