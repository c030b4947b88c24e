"""The audit log's Japanese labels cover every code the code base writes into it.

The action codes, object types, detail keys and process actors are found by reading the
source (``ast``), not from a list kept by hand: a new ``trail.record(..., "x.y")`` without a
label fails here, before an auditor meets ``x.y`` on the screen or in the CSV."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.access import policy
from app.audit import labels, verifier

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("public_form").rglob("*.py")])
CODE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
# Dotted strings in an action area that are not actions: file names and foreign-key targets.
NOT_AN_ACTION = re.compile(r"\.(html|csv|json|jsonl|pem|db|log|id)$")


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    for path in SOURCES:
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _record_calls() -> Iterator[tuple[Path, ast.Call, ast.expr | None]]:
    """Every ``record(session, actor, action, ...)`` call with its action argument."""
    for path, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name != "record":
                continue
            action = node.args[2] if len(node.args) >= 3 else None
            for keyword in node.keywords:
                if keyword.arg == "action":
                    action = keyword.value
            yield path, node, action


def _literals(node: ast.expr | None) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return []


def _enclosing_function(tree: ast.Module, target: ast.AST) -> ast.FunctionDef | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(n is target for n in ast.walk(node)):
            inner = _enclosing_function(ast.Module(body=node.body, type_ignores=[]), target)
            return inner or node
    return None


def _arguments_passed(function: str, param: str, position: int) -> list[ast.expr]:
    """What every call of ``function`` (by name) passes for ``param``."""
    found = []
    for _, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name != function:
                continue
            found += [k.value for k in node.keywords if k.arg == param]
            if len(node.args) > position:
                found.append(node.args[position])
    return found


def _formatted_actions() -> set[str]:
    """``f"verification.{what}"``: the prefix with every constant the function's callers pass."""
    codes = set()
    for path, _call, action in _record_calls():
        if not isinstance(action, ast.JoinedStr):
            continue
        prefix, value = action.values
        assert isinstance(prefix, ast.Constant) and isinstance(value, ast.FormattedValue), path
        assert isinstance(value.value, ast.Name), path
        tree = ast.parse(path.read_text(encoding="utf-8"))
        function = _enclosing_function(tree, next(n for n in ast.walk(tree) if _same(n, action)))
        params = [a.arg for a in function.args.args]
        passed = _arguments_passed(function.name, value.value.id, params.index(value.value.id))
        assert passed, f"{path}: no call of {function.name}"
        for arg in passed:
            assert isinstance(arg, ast.Constant), f"{path}: {function.name} called with a variable"
            codes.add(prefix.value + arg.value)
    return codes


def _passed_through_helpers() -> set[str]:
    """``def _audit_download(session, actor, action, …): record(session, actor, action, …)``:
    the constants its callers pass for ``action`` (one level; variables are left to the scan
    of constants by area)."""
    codes = set()
    for path, _call, action in _record_calls():
        if not isinstance(action, ast.Name):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        function = _enclosing_function(tree, next(n for n in ast.walk(tree) if _same(n, action)))
        params = [a.arg for a in function.args.args] if function else []
        if action.id not in params:
            continue
        for arg in _arguments_passed(function.name, action.id, params.index(action.id)):
            codes |= set(_literals(arg))
    return codes


def _module_constants_passed() -> set[str]:
    """``record(session, actor, ACTION)`` with ``ACTION = "security.canary"`` at module level."""
    codes = set()
    for path, _call, action in _record_calls():
        if not isinstance(action, ast.Name):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == action.id for t in node.targets
            ):
                codes |= set(_literals(node.value))
    return codes


def _same(node: ast.AST, other: ast.AST) -> bool:
    return (
        type(node) is type(other)
        and getattr(node, "lineno", None) == getattr(other, "lineno", None)
        and getattr(node, "col_offset", None) == getattr(other, "col_offset", None)
    )


def _emitted_actions() -> set[str]:
    """Every action code the code base can write.

    Literal actions of ``record`` calls (and both sides of a conditional) name the areas;
    actions also travel through helpers (``_denied(session, actor, "disposal.execute", …)``),
    so every dotted string constant in one of those areas counts; formatted ones are resolved
    through their function's callers."""
    direct = {code for _, _, action in _record_calls() for code in _literals(action)}
    direct |= _module_constants_passed() | _passed_through_helpers()
    areas = {code.split(".")[0] for code in direct}
    constants = set()
    for _, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if CODE.match(text) and not NOT_AN_ACTION.search(text):
                    constants.add(text)
    # The named constants passed as the action (refusals.ACTION, canary.ACTION).
    return direct | {c for c in constants if c.split(".")[0] in areas} | _formatted_actions()


def test_every_action_the_code_base_emits_has_a_japanese_label():
    emitted = _emitted_actions()
    assert len(emitted) > 100  # the scan found the trail's callers
    assert {"auth.login", "access.denied", "security.canary", "verification.open"} <= emitted
    assert {"inquiry.respond", "paper.submit", "audit.export"} <= emitted
    missing = sorted(emitted - labels.ACTION_LABELS.keys())
    assert missing == []


def test_every_action_area_has_a_label_for_the_filter():
    areas = {code.split(".")[0] for code in labels.ACTION_LABELS}
    assert sorted(areas - labels.CATEGORY_LABELS.keys()) == []


def test_every_literal_detail_key_and_object_type_has_a_label():
    keys, object_types = set(), set()
    for _, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "details" and isinstance(keyword.value, ast.Dict):
                    keys |= {k.value for k in keyword.value.keys if isinstance(k, ast.Constant)}
                if keyword.arg == "object_type":
                    object_types |= set(_literals(keyword.value))
    assert len(keys) > 100 and len(object_types) > 20
    assert sorted(keys - labels.DETAIL_LABELS.keys()) == []
    assert sorted(object_types - labels.OBJECT_TYPE_LABELS.keys()) == []


def test_every_role_of_the_permission_tables_has_its_words():
    assert set(labels.ROLE_LABELS) == set(policy.ROLES)


def test_every_named_process_actor_reads_as_what_it_is():
    names = set()
    for _, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "system":
                names |= set(_literals(node.args[0] if node.args else None))
            if getattr(func, "id", None) in ("Actor", "ShellActor"):
                for keyword in node.keywords:
                    if keyword.arg == "name":
                        names |= set(_literals(keyword.value))
    names.discard("register")  # governance's permission probe: never recorded
    assert {"job:mail", "public-form", "anonymous", "mynumber init"} <= names
    assert sorted(n for n in names if labels.actor_label(n) == n) == []


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("job:mail", "自動処理（メール送信）"),
        ("public-form", "回答フォーム（本人・家族）"),
        ("cli:root", "コマンドライン（root）"),
        ("job:return-archive（staff-1）", "自動処理（返却データの作成）（staff-1）"),
        ("job:something-new", "自動処理（something-new）"),
        ("operator-7a", "operator-7a"),
        ("", "（記録なし）"),
        (None, "（記録なし）"),
        ("None", "（記録なし）"),
    ],
)
def test_actor_labels(stored, shown):
    assert labels.actor_label(stored) == shown


def test_roles_results_and_details_read_as_words():
    assert labels.roles_label("ClientStaff,Operator") == "発注者担当者、事務取扱担当者（受注者）"
    assert labels.roles_label("") == "—"
    assert [labels.outcome_label(c) for c in ("success", "denied", "failure")] == [
        "成功",
        "拒否",
        "失敗",
    ]
    assert labels.action_label("auth.*") == "サインイン（すべて）"
    assert labels.details_pairs('{"agreed": true, "count": 3, "files": [], "error": null}') == [
        ("同意", "はい"),
        ("件数", "3"),
        ("ファイル", "なし"),
        ("エラー", "なし"),
    ]
    assert labels.details_text('{"criteria": {"role": "Auditor", "outcome": "denied"}}') == (
        "条件: ロール: 監査担当者、結果: 拒否"
    )
    assert labels.details_pairs("not json") == [("詳細", "not json")]
    assert labels.object_ids_text('["12", "15"]') == "12、15"


@pytest.mark.parametrize(
    ("result", "level", "headline"),
    [
        (verifier.VerifyResult(ok=True, events=0), "bad", "署名済みチェックポイントなし"),
        (
            verifier.VerifyResult(ok=False, events=9, kind="unsigned", unsigned=9),
            "bad",
            "署名済みチェックポイントなし",
        ),
        (
            verifier.VerifyResult(ok=False, events=9, checkpoints=1, kind="unsigned"),
            "bad",
            "署名されていないイベントが上限を超えています",
        ),
        (
            verifier.VerifyResult(ok=False, events=9, checkpoints=3, kind="tampered"),
            "bad",
            "改ざんを検出",
        ),
        (
            verifier.VerifyResult(ok=True, events=9, checkpoints=2, last_signed_seq=7, unsigned=2),
            "warning",
            "完全（イベント 1〜7 は署名済み、最新の 2 件は次のチェックポイントで署名されます）",
        ),
        (
            verifier.VerifyResult(ok=True, events=9, checkpoints=2, last_signed_seq=9),
            "ok",
            "完全（すべてのイベントが署名済み）",
        ),
    ],
    ids=["empty", "no-checkpoint", "tail-too-long", "tampered", "tail-within-limit", "all-signed"],
)
def test_the_signing_status_never_says_complete_without_a_checkpoint(result, level, headline):
    assert verifier.status(result) == (level, headline)


def test_a_known_reason_reads_as_words_and_keeps_its_code():
    assert labels.details_text('{"reason": "bad_totp", "step": "totp"}') == (
        "理由: 確認コードの誤り（bad_totp） / 段階: totp"
    )
    assert labels.details_text('{"reason": "期限切れのため"}') == "理由: 期限切れのため"
