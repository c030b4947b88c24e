"""Japanese words for what the audit trail stores as codes: actions, results, roles, actors,
object types and detail keys.

The trail keeps codes (``auth.login``, ``success``, ``job:mail``) because they are what is
hashed and signed and what scripts grep for; an auditor reads Japanese. The 監査ログ screen and
its CSV both label through this one table, so the two never disagree, and
``tests/audit/test_labels.py`` checks that every action code the code base emits is here.
A code missing from a table is shown as itself, never hidden.
"""

from __future__ import annotations

import json

OUTCOME_LABELS = {"success": "成功", "denied": "拒否", "failure": "失敗"}

# The portal's roles in words: the one table, here because the audit layer is below
# app.access.policy, which uses it (as ``policy.ROLE_LABELS``) for every screen.
ROLE_LABELS = {
    "SystemAdmin": "システム管理者",
    "Operator": "事務取扱担当者（受注者）",
    "ClientStaff": "発注者担当者",
    "Auditor": "監査担当者",
}
# The role filter's value for events no portal role acted in (jobs, the command line, the
# public form, a sign-in attempt).
NO_ROLE = "-"
NO_ROLE_LABEL = "ロールなし（自動処理・コマンド・回答フォーム）"

# The first part of an action code: the area, used to group the action filter.
CATEGORY_LABELS = {
    "access": "アクセス制御",
    "account": "アカウント",
    "audit": "監査",
    "auth": "サインイン",
    "backup": "バックアップ",
    "billing": "請求",
    "campaign": "収集キャンペーン",
    "certificate": "削除証明書",
    "dependent": "扶養親族",
    "disposal": "廃棄",
    "dunning": "督促",
    "handling_chart": "情報管理体制図",
    "inquiry": "お問い合わせ",
    "intake": "受付",
    "keys": "鍵管理",
    "layout": "CSV様式",
    "mail": "メール",
    "mailing": "送付",
    "number": "個人番号",
    "numbers": "CSV取込・出力・照合",
    "paper": "郵送受付",
    "people": "人物検索",
    "person": "人物の管理",
    "print": "印刷",
    "register": "取扱状況",
    "report": "利用実績報告書",
    "retention": "保管期限",
    "return": "返却データ",
    "roster": "情報取扱者名簿",
    "security": "セキュリティ",
    "system": "システム",
    "upload": "アップロード",
    "user": "ユーザー",
    "verification": "確認キュー",
}

ACTION_LABELS = {
    "access.denied": "権限のない操作の拒否",
    "access.refused": "許可されていないネットワークからの接続の拒否",
    "account.change_approved": "アカウント変更の承認",
    "account.change_rejected": "アカウント変更の却下",
    "account.change_requested": "アカウント変更の申請",
    "account.preapproved_add": "アカウントの追加（承認済み）",
    "audit.checkpoint": "監査チェックポイントの署名",
    "audit.export": "監査ログのCSVダウンロード",
    "audit.verify": "監査チェーンの検証",
    "auth.lockout": "アカウントのロック",
    "auth.login": "サインイン",
    "auth.logout": "サインアウト",
    "auth.session_ended": "セッションの終了",
    "auth.step_up": "追加認証（ワンタイムコード）",
    "auth.totp_enrolled": "ワンタイムコードの登録",
    "backup.create": "バックアップの作成",
    "backup.created": "バックアップの作成完了",
    "backup.pruned": "古いバックアップの削除",
    "backup.restored": "バックアップからの復元",
    "billing.price_set": "料金単価の設定",
    "billing.postage_record": "郵送料実績の記録",
    "billing.rate_set": "郵送料金表の設定",
    "campaign.assign": "担当事務取扱担当者の割当",
    "campaign.create": "キャンペーンの作成",
    "campaign.dispatch": "依頼の送付開始",
    "campaign.letter_update": "依頼文の変更",
    "campaign.status_export": "状況一覧のダウンロード",
    "campaign.targets_load": "対象者リストの取込",
    "campaign.targets_rejected": "対象者リストの取込拒否",
    "campaign.targets_upload": "対象者リストの受付（確認・登録の開始）",
    "campaign.unassign": "担当事務取扱担当者の割当解除",
    "certificate.download": "削除証明書のダウンロード",
    "dependent.add": "扶養親族の追加",
    "dependent.remove": "扶養親族の削除",
    "dependent.renumber": "扶養者コードの振り直し",
    "disposal.approved": "廃棄申請の承認",
    "disposal.execute": "廃棄の実行",
    "disposal.executed": "廃棄の完了",
    "disposal.keys_close": "廃棄後の鍵の整理",
    "disposal.keys_closed": "廃棄後の鍵の整理完了",
    "disposal.material_recorded": "書類・媒体の廃棄の記録",
    "disposal.people_disposed": "人物データの廃棄",
    "disposal.reapplied": "中断した廃棄の再適用",
    "disposal.rejected": "廃棄申請の却下",
    "disposal.requested": "廃棄の申請",
    "disposal.storage_compacted": "廃棄後の記憶領域の整理",
    "disposal.view": "廃棄申請の閲覧",
    "dunning.run": "督促の実行",
    "handling_chart.approved": "情報管理体制図の承認",
    "handling_chart.export": "情報管理体制図のダウンロード",
    "handling_chart.proposed": "情報管理体制図の提案",
    "handling_chart.rejected": "情報管理体制図の却下",
    "inquiry.assign": "お問い合わせの担当割当",
    "inquiry.close": "お問い合わせの完了",
    "inquiry.mail": "お問い合わせ回答のメール送信",
    "inquiry.mail_failed": "お問い合わせ回答のメール送信失敗",
    "inquiry.receive": "お問い合わせの受付",
    "inquiry.refused": "お問い合わせの受付拒否（個人番号の記載）",
    "inquiry.reopen": "お問い合わせの再開",
    "inquiry.respond": "お問い合わせへの回答",
    "intake.auth": "回答フォームの本人確認",
    "intake.decline": "提供の辞退",
    "intake.deficient": "不備の通知",
    "intake.locked": "回答フォームのロック",
    "intake.open": "提出内容の開封",
    "intake.number_held_elsewhere": "提出番号が他の方に登録済み（重複の検出）",
    "intake.open_document": "提出書類の表示",
    "intake.request_create": "収集依頼の作成",
    "intake.status": "受付状況の変更",
    "intake.submit": "回答フォームからの提出",
    "intake.unlock": "回答フォームのロック解除",
    "keys.backup": "鍵のバックアップ",
    "keys.backup_destroyed": "鍵バックアップの破棄",
    "keys.destroyed": "鍵の破棄",
    "keys.operator_public_key": "受注者公開鍵の登録",
    "keys.retire": "鍵の廃止",
    "keys.retired": "鍵の廃止完了",
    "keys.rotate": "鍵の更新",
    "keys.rotated": "鍵の更新完了",
    "layout.add": "CSV様式の追加",
    "layout.delete": "CSV様式の削除",
    "layout.edit": "CSV様式の変更",
    "mail.refused": "メール送信の拒否（個人番号を含む本文）",
    "mailing.bounce": "メールの不達",
    "mailing.resend": "依頼の再送",
    "number.add": "個人番号の登録",
    "number.replace": "個人番号の変更",
    "number.reveal": "個人番号の表示",
    "numbers.export": "CSV出力",
    "numbers.import": "CSV取込",
    "numbers.import.begin": "CSV取込の開始",
    "numbers.import_check": "CSV取込の事前確認",
    "numbers.match": "一括照合",
    "paper.add_dependent": "郵送受付: 扶養親族の追加",
    "paper.exclude": "郵送受付: 扶養親族の除外",
    "paper.key": "郵送受付: 番号の入力",
    "paper.receive": "郵送受付: 封筒の受付",
    "paper.return_documents": "郵送受付: 書類の返送",
    "paper.scan": "郵送受付: 書類の取込",
    "paper.scan_remove": "郵送受付: 取込書類の削除",
    "paper.submit": "郵送受付: 提出の確定",
    "people.search": "人物の検索",
    "people.view": "人物の閲覧",
    "person.add": "人物の登録",
    "person.edit": "人物情報の変更",
    "person.end": "退職・終了の登録",
    "person.name_change": "氏名の変更",
    "person.remove": "人物の削除",
    "print.batch_create": "印刷バッチの作成",
    "print.download": "印刷ファイルのダウンロード",
    "print.posted": "発送済みの記録",
    "print.preview": "印刷の見本表示",
    "print.render": "印刷ファイルの作成",
    "register.export": "取扱状況の記録のダウンロード",
    "report.download": "利用実績報告書のダウンロード",
    "report.correct": "利用実績報告書の訂正版の作成",
    "report.generate": "利用実績報告書の作成",
    "report.notes": "利用実績報告書の備考",
    "report.plan_set": "想定人数の設定",
    "report.send": "利用実績報告書の送付",
    "retention.recomputed": "削除予定日の再計算",
    "retention.reviewed": "保管期限の点検",
    "retention.rule_changed": "保管期限の規則の変更",
    "retention.view": "保管期限の閲覧",
    "return.download": "返却データのダウンロード",
    "return.export": "返却データの作成",
    "return.exported": "返却データの作成完了",
    "return.requested": "返却データの申請",
    "roster.change_approved": "名簿の変更の承認",
    "roster.change_rejected": "名簿の変更の却下",
    "roster.change_requested": "名簿の変更の申請",
    "roster.export": "情報取扱者名簿のダウンロード",
    "roster.preapproved_add": "名簿への追加（承認済み）",
    "security.canary": "検知用データへのアクセス（警報）",
    "system.init": "初期設定",
    "upload.refused": "アップロードの拒否",
    "user.add": "ユーザーの追加",
    "user.delete": "ユーザーの削除",
    "user.edit": "ユーザーの変更",
    "user.password_changed": "パスワードの変更",
    "user.password_reset": "パスワードの再設定",
    "verification.accept": "確認: 受理",
    "verification.check": "確認: チェックリストの記録",
    "verification.claim": "確認: 案件の担当",
    "verification.claim_approval": "確認: 二人目の確認の担当",
    "verification.deficient": "確認: 不備",
    "verification.open": "確認: 提出内容の開封",
    "verification.refuse": "確認: 受理しない",
    "verification.release": "確認: 担当の解除",
}

OBJECT_TYPE_LABELS = {
    "postage_entry": "郵送料実績",
    "postage_rate": "郵送料金表",
    "account_change": "アカウント変更",
    "backup": "バックアップ",
    "campaign": "キャンペーン",
    "canary": "検知用データ",
    "collection_request": "収集依頼",
    "delivery": "送付",
    "disposal_request": "廃棄申請",
    "governance": "情報管理体制",
    "handling_chart": "情報管理体制図",
    "inquiry": "お問い合わせ",
    "kek": "鍵暗号化鍵",
    "keyring": "キーリング",
    "layout": "CSV様式",
    "monthly_report": "利用実績報告書",
    "paper_intake": "郵送受付",
    "person": "人物",
    "planned_volume": "想定人数",
    "print_batch": "印刷バッチ",
    "retention_rule": "保管期限の規則",
    "return_archive": "返却データ",
    "roster": "情報取扱者名簿",
    "roster_change": "名簿の変更",
    "submission": "提出",
    "submission_part": "提出内容の一部",
    "unit_price": "料金単価",
    "user": "ユーザー",
    "verification_case": "確認案件",
}

# The keys of an event's details, as the screen and the CSV label them.
DETAIL_LABELS = {
    "dry_run": "確認のみ（登録しない）",
    "cost_yen": "金額（円）",
    "direction": "区分（発送・返送）",
    "form_unreachable": "提出フォームに接続できない",
    "invalid": "不正な設定",
    "invoice_sha256": "請求書のハッシュ（SHA-256）",
    "missing": "未設定の項目",
    "replaced_unsent": "未送付の版を置き換え",
    "reported_months": "影響する報告済みの月",
    "action": "操作",
    "actor": "実行者",
    "active": "有効",
    "after": "変更後",
    "agreed": "同意",
    "approved_by": "承認者",
    "assigned": "割当",
    "backup_audit_seq": "バックアップ時点の監査イベント番号",
    "backup_created_at": "バックアップの作成日時",
    "backup_schema_revision": "バックアップのスキーマ版",
    "backups_deleted": "削除したバックアップ",
    "before": "変更前",
    "bytes": "バイト数",
    "canaries": "検知用データ",
    "carrier": "運送事業者",
    "category": "区分",
    "certificate_no": "証明書番号",
    "changed": "変更",
    "changed_on": "変更日",
    "channel": "送付方法",
    "chart_id": "体制図ID",
    "checked_by": "確認者",
    "checklist": "チェックリスト",
    "checkpoints": "チェックポイント数",
    "checkpoints_set_aside": "退避したチェックポイント",
    "columns": "列",
    "contact_differs": "連絡先の相違",
    "count": "件数",
    "counts": "件数",
    "created_admin": "管理者の作成",
    "created_intake_key": "受付鍵の作成",
    "created_keyring": "キーリングの作成",
    "credentials_issued": "資格情報の発行",
    "criteria": "条件",
    "data_keys": "データ鍵",
    "date_format": "日付の形式",
    "deadline": "期限",
    "deadline_moved": "期限の変更",
    "deleted": "削除",
    "demo": "見本データ",
    "dependent_code": "扶養者コード",
    "disposals_reapplied": "再適用した廃棄",
    "doc_type": "書類の種類",
    "effective_from": "適用開始日",
    "emails": "メール",
    "emails_queued": "送信待ちメール",
    "encoding": "文字コード",
    "ended_on": "終了日",
    "entry": "名簿の項目",
    "entry_id": "名簿ID",
    "error": "エラー",
    "events": "イベント数",
    "export_id": "出力ID",
    "failed_attempts": "失敗回数",
    "field": "項目",
    "fields": "項目",
    "file": "ファイル",
    "files": "ファイル",
    "fingerprint": "指紋（フィンガープリント）",
    "first_bad": "最初の不整合",
    "fiscal_year": "年度",
    "format": "形式",
    "found": "該当",
    "four_eyes": "二人確認",
    "from": "開始",
    "from_version": "変更前の版",
    "households": "世帯数",
    "ids_in": "対象ID",
    "ids_sha256": "対象IDのSHA-256",
    "keep": "保持",
    "keep_images": "画像の保持",
    "kek_versions_kept": "残した鍵の版",
    "kind": "種別",
    "kits_pending": "未印刷のキット",
    "last_signed": "署名済みの最終イベント",
    "layout": "CSV様式",
    "length": "長さ",
    "letters": "通知文",
    "manifest_sha256": "出力一覧のSHA-256",
    "method": "方法",
    "minutes": "分",
    "mismatch": "不一致",
    "name": "名称",
    "new": "新規",
    "notice": "通知",
    "outcome": "結果",
    "number": "番号",
    "part": "部分",
    "parts": "部分",
    "path": "パス",
    "path_label": "保存先",
    "people": "人数",
    "people_created": "新規登録した人数",
    "people_matched": "一致した人数",
    "performed_on": "実施日",
    "period_from": "期間（開始日・JST）",
    "period_to": "期間（終了日・JST）",
    "planned": "想定",
    "positions": "位置",
    "posted_on": "発送日",
    "previous_status": "変更前の状態",
    "price_yen": "単価（円）",
    "problems": "問題",
    "reapplied_data_keys": "再適用したデータ鍵",
    "reapplied_people": "再適用した人数",
    "reason": "理由",
    "refs": "登録済みの方（内部ID）",
    "reasons": "理由",
    "received_on": "受付日",
    "recipient": "宛先",
    "recipients": "宛先",
    "record": "記録",
    "ref": "参照番号",
    "reminded": "督促数",
    "renumbered": "振り直し",
    "reopened": "再提出を求めた部分",
    "replaced": "置き換え",
    "request": "依頼",
    "requested_by_id": "申請者ID",
    "requests": "依頼",
    "requests_issued": "発行した依頼",
    "resealed": "再封印",
    "rewrapped": "鍵を掛け直したデータ鍵",
    "role": "ロール",
    "roles": "ロール",
    "roster_entry_id": "名簿ID",
    "route": "画面（URLの型）",
    "rows": "行数",
    "run_date": "実行日",
    "scope": "範囲",
    "screen": "画面",
    "sent_on": "送付日",
    "seq": "イベント番号",
    "sha256": "SHA-256",
    "shredded_keys_removed": "消去済み鍵の整理",
    "skipped": "対象外",
    "source": "取得元",
    "status": "状態",
    "step": "段階",
    "superseded_record": "置き換えられた記録",
    "to": "終了",
    "tracking_number": "追跡番号",
    "trigger": "きっかけ",
    "unrestorable_backups": "復元できなくなったバックアップ",
    "unsigned": "未署名のイベント数",
    "user_id": "ユーザーID",
    "version": "版",
}

# The reasons the sign-in, session and refusal events give (``details.reason``); other
# reasons (free text, or codes of a single screen) are shown as recorded.
REASON_LABELS = {
    "bad_credentials": "ユーザー名またはパスワードの誤り",
    "bad_totp": "確認コードの誤り",
    "totp_replayed": "使用済みの確認コード",
    "locked": "ロック中",
    "inactive": "アカウントの無効化",
    "revoked": "ログアウト・ロック後の古いセッション",
    "access_changed": "ロール・名簿・パスワードの変更",
    "absolute_timeout": "ログインからの時間切れ",
    "idle": "無操作による時間切れ",
    "forbidden": "権限のない画面・操作",
    "csrf": "フォームの確認用トークンなし（CSRF）",
    "unknown_action": "画面にない操作",
    "no_api": "存在しない API",
    "network_not_allowed": "許可されていないネットワーク",
    "number_in_text": "自由記入欄の個人番号",
    "number_in_text_field": "自由記入欄の個人番号",
    "duplicate_number": "他の人物に登録済みの個人番号",
    "pdf_active_content": "PDF の実行可能な内容",
}

# Processes that act without a person, by the name the trail records (``job:mail``,
# ``public-form``); ``cli:<user>`` and ``job:<name>（…）`` keep their variable part.
SYSTEM_ACTOR_LABELS = {
    "anonymous": "未ログインの利用者",
    "system": "システム",
    "public-form": "回答フォーム（本人・家族）",
    "mynumber init": "初期設定（mynumber init）",
    "mynumber demo": "見本データの作成（mynumber demo）",
    "job:mail": "自動処理（メール送信）",
    "job:dunning": "自動処理（督促）",
    "job:print": "自動処理（印刷ファイルの作成）",
    "job:retention-review": "自動処理（保管期限の点検）",
    "job:daily-backup": "自動処理（日次バックアップ）",
    "job:disposal-finish": "自動処理（廃棄の仕上げ）",
    "job:monthly_report": "自動処理（利用実績報告書）",
    "job:return-archive": "自動処理（返却データの作成）",
}
NO_VALUE = "—"


def action_choices() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The action filter's options: (area code, area, [(action code, action)]) by area."""
    groups = []
    for area, area_label in sorted(CATEGORY_LABELS.items()):
        members = sorted(
            (code, label) for code, label in ACTION_LABELS.items() if code.split(".")[0] == area
        )
        groups.append((area, area_label, members))
    return groups


def action_label(code: str | None) -> str:
    """The action in Japanese (a filter's ``auth.*`` as 「サインイン（すべて）」); an unknown code
    is shown as itself."""
    if code and code.endswith(".*") and code[:-2] in CATEGORY_LABELS:
        return f"{CATEGORY_LABELS[code[:-2]]}（すべて）"
    return ACTION_LABELS.get(code or "", code or NO_VALUE)


def outcome_label(code: str | None) -> str:
    return OUTCOME_LABELS.get(code or "", code or NO_VALUE)


def object_type_label(code: str | None) -> str:
    return OBJECT_TYPE_LABELS.get(code or "", code or NO_VALUE)


def roles_label(stored: str | None) -> str:
    """``Auditor,Operator`` (as stored) → 「監査担当者、事務取扱担当者（受注者）」; no role → —."""
    names = [r for r in (stored or "").split(",") if r]
    if not names:
        return NO_VALUE
    return "、".join(ROLE_LABELS.get(r, r) for r in names)


def actor_label(name: str | None) -> str:
    """Who acted, readable: a portal user by their user name, a process by what it is.

    ``cli:root`` → 「コマンドライン（root）」; ``job:return-archive（山田）`` → 「自動処理（返却
    データの作成）（山田）」; an empty name (never expected) → 「（記録なし）」.
    """
    if not name or name == "None":
        return "（記録なし）"
    if name in SYSTEM_ACTOR_LABELS:
        return SYSTEM_ACTOR_LABELS[name]
    if name.startswith("cli:"):
        return f"コマンドライン（{name[len('cli:') :]}）"
    if name.startswith("job:"):
        base, sep, rest = name.partition("（")
        label = SYSTEM_ACTOR_LABELS.get(base, f"自動処理（{base[len('job:') :]}）")
        return f"{label}（{rest}" if sep else label
    return name


def _coded(key: str, value: object) -> str | None:
    """A detail whose value is itself a code (a role, an action, a result) in Japanese."""
    if key in ("role", "roles") and isinstance(value, str | list | tuple):
        return roles_label(value if isinstance(value, str) else ",".join(map(str, value)))
    if key == "action" and isinstance(value, str) and action_label(value) != value:
        return action_label(value)
    if key == "outcome" and isinstance(value, str):
        return outcome_label(value)
    if key == "reason" and isinstance(value, str) and value in REASON_LABELS:
        return f"{REASON_LABELS[value]}（{value}）"
    return None


def pair_text(key: str, value: object) -> str:
    """A detail's value, read through its key when the value is a code."""
    coded = _coded(key, value)
    return coded if coded is not None else value_text(value)


def value_text(value: object) -> str:
    """One detail value as a person reads it: はい/いいえ, lists joined by 「、」, nested
    key/value pairs labelled like the top level."""
    if value is None:
        return "なし"
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    if isinstance(value, list | tuple):
        return "、".join(value_text(v) for v in value) if value else "なし"
    if isinstance(value, dict):
        pairs = (f"{detail_label(k)}: {pair_text(k, v)}" for k, v in value.items())
        return "、".join(pairs) or "なし"
    return str(value)


def detail_label(key: str) -> str:
    return DETAIL_LABELS.get(key, key)


def details_pairs(stored: str | None) -> list[tuple[str, str]]:
    """An event's details JSON as labelled (key, value) pairs, in the stored (sorted) order.

    Text that is not a JSON object (never written by ``trail.record``) is shown whole under
    「詳細」 rather than dropped."""
    if not stored:
        return []
    try:
        data = json.loads(stored)
    except ValueError:
        return [("詳細", stored)]
    if not isinstance(data, dict):
        return [("詳細", value_text(data))]
    return [(detail_label(k), pair_text(k, v)) for k, v in data.items()]


def details_text(stored: str | None) -> str:
    """The details on one line for the CSV: 「件数: 3 / 理由: …」."""
    return " / ".join(f"{k}: {v}" for k, v in details_pairs(stored))


def object_ids_text(stored: str | None) -> str:
    """The JSON list of object ids as 「12、15」."""
    if not stored:
        return ""
    try:
        ids = json.loads(stored)
    except ValueError:
        return stored
    return value_text(ids) if ids else ""
