"""Columns that hold operational secrets sealed under a KEK-derived key
(``Vault.seal_system``): each declares its label, purpose and AAD here, on the column itself.

Key rotation and retirement (``app.lifecycle.keyops``) find every such column from the schema, so
an owner never has to register anywhere else and the vault never imports the owners; the
owners seal and open with the same declaration, so the AAD is written once.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass

from flask_appbuilder import Model

INFO_KEY = "system_sealed"


@dataclass(frozen=True)
class SystemSealed:
    """How a column's blobs are sealed: ``aad_template`` names the row's columns."""

    label: str  # Japanese, for messages and ``mynumber keys list``
    purpose: str
    aad_template: str

    def aad(self, **values: object) -> str:
        return self.aad_template.format(**values)

    @property
    def aad_columns(self) -> tuple[str, ...]:
        """The row's columns the AAD is built from, in template order."""
        parsed = string.Formatter().parse(self.aad_template)
        return tuple(name for _, name, _, _ in parsed if name)

    def info(self) -> dict:
        """The ``mapped_column(info=…)`` that declares a column sealed this way."""
        return {INFO_KEY: self}


TOTP_SECRET = SystemSealed("TOTP シークレット", "totp", "user:{id}")
PRINT_FILE = SystemSealed("印刷ファイル", "print", "print_batch:{batch_id}:{part_no}")
# 職員番号 / 委員番号 and name of a disposed person, kept for the deletion certificate: under
# the KEKs like every other name at rest after disposal, so that destroying the key ring at
# contract end leaves nothing readable of them, as of everything else.
DISPOSED_PERSON = SystemSealed(
    "廃棄した人の記録（削除証明書）", "disposed_person", "disposal_item:{id}:{person_id}"
)
IO_TICKET = SystemSealed(
    "取込・照合の確認待ち", "io_ticket", "mnv:io_ticket:{id}:{user_id}:{purpose}"
)

# A target list uploaded in the portal waits here for its job (its rows name people), and
# the job's findings (every problem, or the counts) wait here for the page that shows them.
TARGET_UPLOAD = SystemSealed("対象者リストの処理待ち", "target_upload", "mnv:target_upload:{id}")
TARGET_UPLOAD_RESULT = SystemSealed(
    "対象者リストの処理結果", "target_upload_result", "mnv:target_upload_result:{id}"
)


def sealed_columns() -> Iterator[tuple[type, str, SystemSealed]]:
    """(model, column attribute, declaration) of every declared column, in table order (of
    the models imported: ``app.models`` imports them all)."""
    for mapper in sorted(Model.registry.mappers, key=lambda m: m.class_.__tablename__):
        for attr in mapper.column_attrs:
            spec = attr.columns[0].info.get(INFO_KEY)
            if spec is not None:
                yield mapper.class_, attr.key, spec
