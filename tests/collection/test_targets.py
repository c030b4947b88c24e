"""Target lists: the whole file is checked first, every problem reported as 行 N: 項目: 理由,
nothing loaded if any row is bad; UTF-8 (with or without BOM) and CP932; people matched or
created; one request per household or person."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.collection import campaigns, targets
from app.models import CampaignKind, CollectionRequest, Person, PersonKind
from app.people import registry
from tests.collection import flows
from tests.collection.conftest import EMPLOYEE_CSV, EXTERNAL_CSV, NUMBER_TARO, future_business_day

HEADER = EMPLOYEE_CSV.splitlines()[0]


def _campaign(session, staff, kind=CampaignKind.EMPLOYEE):
    return campaigns.create_campaign(
        session,
        staff,
        name="テスト",
        kind=kind,
        deadline=future_business_day(),
        purpose_text="源泉徴収票作成事務",
        month="2026-04" if kind == CampaignKind.EXTERNAL else None,
    )


def _load(app, session, staff, campaign, text, encoding="utf-8"):
    data = text.encode(encoding) if isinstance(text, str) else text
    return targets.load(
        session,
        app.extensions["mynumber_vault"],
        app.extensions["mynumber_keyring"],
        staff,
        campaign,
        data,
    )


def _count(session, model):
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_every_problem_is_reported_and_nothing_is_loaded(app, session, staff):
    campaign = _campaign(session, staff)
    rows = [
        HEADER,
        "E1,本人,,山田 太郎,ヤマダ タロウ,1985/01/02,100-0001,東京都,a@example.jp,メール",  # fine
        "E2,本人,,,やまだ,1985/13/01,1000001,,not-an-email,メール",  # name, kana, date, email
        "E3,社長,,山田 三郎,,1985/01/02,,,,",  # 本人区分
        "E4,本人,,山田 四郎,,,,,,郵送",  # birth date, postal code, address
        "E5,扶養親族,,山田 五子,,2010/01/01,100-0001,,,",  # 続柄, postal code on a dependent
        "E1,本人,,山田 重複,,1985/01/02,,,x@example.jp,",  # duplicate code
        "E6,本人,,山田 六郎,,2999/01/01,,,x@example.jp,FAX",  # future date, channel
        f"E7,本人,,山田 七郎 {NUMBER_TARO},,1985/01/02,,,x@example.jp,",  # a number!
        "E8,本人,,山田 八郎",  # too few cells
        "E9,扶養親族,子,孤児 九子,,2010/01/01,,,,",  # no employee row
    ]
    with pytest.raises(targets.TargetFileError) as info:
        _load(app, session, staff, campaign, "\r\n".join(rows) + "\r\n")
    problems = info.value.problems
    expected = [
        "行 3: 氏名: 入力してください",
        "行 3: 氏名カナ: 全角カタカナで入力してください",
        "行 3: 生年月日: 存在しない日付です: 1985/13/1",
        "行 3: メールアドレス: メールアドレスの形式が正しくありません",
        "行 4: 本人区分: 「社長」は使えません（本人 または 扶養親族）",
        "行 5: 生年月日: 入力してください（提出フォームでの本人確認に使います）",
        "行 5: 郵便番号: 送付方法が郵送の場合は入力してください",
        "行 5: 住所: 送付方法が郵送の場合は入力してください",
        "行 6: 続柄: 扶養親族の行では入力してください",
        "行 6: 郵便番号: 扶養親族の行には入力しません（役職員本人の行に入力します）",
        # Found in the same pass as the row's own typos, not after they are fixed.
        "行 6: 職員番号: 扶養者（本人区分「本人」の行）がこのファイルにありません",
        "行 7: 職員番号: 行 2 と重複しています",
        "行 8: 生年月日: 未来の日付です",
        "行 8: 送付方法: 「FAX」は使えません（メール または 郵送）",
        "行 9: 氏名: 個人番号と思われる12桁の数字が含まれています。個人番号は入力しないでください。",
        "行 10: 行全体: 列の数（4）が見出し（10）と一致しません",
        "行 11: 職員番号: 扶養者（本人区分「本人」の行）がこのファイルにありません",
    ]
    for line in expected:
        assert line in problems, line
    assert len(problems) == len(expected)
    assert NUMBER_TARO not in "".join(problems)
    assert _count(session, Person) == 0 and _count(session, CollectionRequest) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "行 1: ファイル: 空のファイルです"),
        ("氏名,生年月日\r\n".encode(), "行 1: ヘッダー: 不足している列: 職員番号"),
        ((HEADER + ",備考\r\n").encode(), "不明な列: 備考"),
        ((HEADER + ",氏名\r\n").encode(), "重複した列: 氏名"),
        ((HEADER + "\r\n").encode(), "行 2: データ: 対象者の行がありません"),
        (b"\xff\xfe\x00\x81\x00garbage", "文字コードを判別できません"),
    ],
)
def test_a_file_that_cannot_be_read_says_why(app, session, staff, data, message):
    campaign = _campaign(session, staff)
    with pytest.raises(targets.TargetFileError) as info:
        _load(app, session, staff, campaign, data)
    assert any(message in p for p in info.value.problems), info.value.problems


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_encodings(app, session, staff, encoding):
    campaign = _campaign(session, staff, CampaignKind.EXTERNAL)
    parsed, result = _load(app, session, staff, campaign, EXTERNAL_CSV, encoding)
    assert parsed.encoding == encoding and result.requests_issued == 1
    person = session.execute(select(Person)).scalar_one()
    assert person.name == "佐藤 一郎" and person.birth_date == dt.date(1970, 5, 6)
    assert (
        person.postal_code == "530-0001"
        and person.address_enc
        and b"\xe5\xa4\xa7" not in person.address_enc
    )
    assert registry.decrypt_address(session, app.extensions["mynumber_vault"], person).startswith(
        "大阪府"
    )


def test_people_are_matched_and_requests_not_duplicated(app, session, vault, staff):
    existing = registry.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name="見本 太郎",
        code="E1001",
        birth_date=dt.date(1985, 1, 2),
    )
    session.commit()
    campaign, result = flows.campaign_with_targets(app, staff)
    assert (result.people_matched, result.people_created) == (1, 2)
    session.refresh(existing)
    assert existing.email == "taro@example.jp" and len(existing.dependents) == 1
    # The same file again: the households are already requested in this campaign.
    _parsed, again = _load(app, session, staff, campaign, EMPLOYEE_CSV, "utf-8-sig")
    assert again.requests_issued == 0 and again.skipped_already_requested == 2
    assert again.people_created == 0
    # A second campaign replaces the open link (only the newest link works).
    second = _campaign(session, staff)
    _parsed, third = _load(app, session, staff, second, EMPLOYEE_CSV, "utf-8-sig")
    assert third.requests_issued == 2 and third.replaced_requests == 2
    statuses = sorted(r.status for r in session.execute(select(CollectionRequest)).scalars())
    assert statuses == ["cancelled", "cancelled", "issued", "issued"]


def test_a_stored_birth_date_that_differs_is_a_problem(app, session, vault, staff):
    registry.add_person(
        session,
        vault,
        kind=PersonKind.EXTERNAL,
        name="佐藤 一郎",
        code="X2001",
        birth_date=dt.date(1970, 5, 7),
    )
    gone = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="退任 者", code="X2002"
    )
    gone.status = "disposed"
    session.commit()
    campaign = _campaign(session, staff, CampaignKind.EXTERNAL)
    text = EXTERNAL_CSV + "X2002,退任 者,,1960/01/01,100-0001,東京都,,郵送\r\n"
    with pytest.raises(targets.TargetFileError) as info:
        _load(app, session, staff, campaign, text)
    assert info.value.problems == [
        "行 2: 生年月日: 登録済みの生年月日と異なります（先に人物情報を訂正してください）",
        "行 3: 委員番号: 廃棄済みの人物です（新しい番号で登録してください）",
    ]


def test_a_bad_row_still_takes_part_in_the_cross_row_checks(app, session, staff):
    """The first check used to list a row's typos and, once they were fixed, a new problem
    on the same row (扶養者がこのファイルにありません): every problem comes in one pass."""
    campaign = _campaign(session, staff)
    rows = [
        HEADER,
        # A head row with a bad date still owns its dependent (no false "扶養者がありません").
        "E1,本人,,山田 太郎,,1985/02/30,,,a@example.jp,メール",
        "E1,扶養親族,子,山田 花子,,2010/01/01,,,,",
        # A dependent with a typo and no employee row: both at once.
        "E9,扶養親族,子,孤児 九子,こじ,2010/13/01,,,,",
        # A head row with a number in one field is still checked on the others.
        f"E3,本人,,山田 三郎,,,,,{NUMBER_TARO}@example.jp,",
        "E3,本人,,山田 三郎,,1985/01/02,,,c@example.jp,",
    ]
    with pytest.raises(targets.TargetFileError) as info:
        _load(app, session, staff, campaign, "\r\n".join(rows) + "\r\n")
    assert info.value.problems == [
        "行 2: 生年月日: 存在しない日付です: 1985/2/30",
        "行 4: 氏名カナ: 全角カタカナで入力してください",
        "行 4: 生年月日: 存在しない日付です: 2010/13/1",
        "行 4: 職員番号: 扶養者（本人区分「本人」の行）がこのファイルにありません",
        "行 5: メールアドレス: 個人番号と思われる12桁の数字が含まれています。"
        "個人番号は入力しないでください。",
        "行 5: 生年月日: 入力してください（提出フォームでの本人確認に使います）",
        "行 6: 職員番号: 行 5 と重複しています",
    ]
    assert NUMBER_TARO not in "".join(info.value.problems)


def test_a_missing_column_is_reported_once_and_the_rows_are_still_checked(app, session, staff):
    campaign = _campaign(session, staff, CampaignKind.EXTERNAL)
    header = "委員番号,氏名,氏名カナ,生年月日,郵便番号,住所,送付方法"  # no メールアドレス
    text = header + "\r\nX1,佐藤 一郎,,1970/02/31,530-0001,大阪府,郵送\r\n"
    with pytest.raises(targets.TargetFileError) as info:
        _load(app, session, staff, campaign, text)
    assert info.value.problems == [
        "行 1: ヘッダー: 不足している列: メールアドレス（テンプレートの見出し: "
        "委員番号,氏名,氏名カナ,生年月日,郵便番号,住所,メールアドレス,送付方法）",
        "行 2: 生年月日: 存在しない日付です: 1970/2/31",
    ]


@pytest.mark.parametrize("kind", [CampaignKind.EMPLOYEE, CampaignKind.EXTERNAL])
def test_the_template_has_the_allowed_values_and_a_sample_that_is_never_loaded(
    app, session, staff, kind
):
    data = targets.template_csv(kind)
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(targets.HEADERS[kind])
    # Under each column, what it takes: the channel's allowed values among them.
    assert lines[1].startswith("※") and "メール または 郵送" in lines[1]
    if kind == CampaignKind.EMPLOYEE:
        assert "本人 または 扶養親族" in lines[1]
    campaign = _campaign(session, staff, kind)
    with pytest.raises(targets.TargetFileError) as info:
        _load(app, session, staff, campaign, data)
    # The row of allowed values is skipped; the sample rows are otherwise valid, and each
    # is refused by name so that a forgotten sample never becomes a person.
    label = targets.HEADERS[kind][0]
    assert info.value.problems == [
        f"行 {n}: {label}: テンプレートの記入例の行です（削除してから登録してください）"
        for n in range(3, 3 + len(targets.SAMPLE_ROWS[kind]))
    ]
    # The client's rows typed under the samples load once the samples are deleted.
    kept = "\r\n".join(lines[:2]) + "\r\n" + EXTERNAL_CSV.splitlines()[1] + "\r\n"
    if kind == CampaignKind.EXTERNAL:
        _parsed, result = _load(app, session, staff, campaign, kept)
        assert result.requests_issued == 1


def test_dry_run(app, session, staff):
    campaign = _campaign(session, staff, CampaignKind.EXTERNAL)
    parsed, result = targets.load(
        session,
        app.extensions["mynumber_vault"],
        app.extensions["mynumber_keyring"],
        staff,
        campaign,
        EXTERNAL_CSV.encode("cp932"),
        dry_run=True,
    )
    assert result is None and parsed.rows == 1 and _count(session, Person) == 0
