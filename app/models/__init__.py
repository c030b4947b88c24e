"""The database schema, one module per area; import models from here.

- ``core``: people, numbers, data keys, users and roster, case assignments, audit chain.
- ``roster``: proposed roster changes awaiting the client's approval.
- ``lifecycle``: retention rules, disposal requests and items, backups, return archives.

Every table lives on FAB's declarative ``Model.metadata`` (Alembic's target); every change
comes with a migration in ``migrations/versions``.
"""

from app.models.core import (  # noqa: F401
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    CaseAssignment,
    DataKey,
    HandlerRosterEntry,
    MyNumberRecord,
    Person,
    PersonKind,
    VaultUser,
    db,
    utcnow,
)
from app.models.lifecycle import (  # noqa: F401, E402
    BackupRecord,
    DisposalItem,
    DisposalKind,
    DisposalRequest,
    DisposalScope,
    DisposalStatus,
    RetentionRule,
    ReturnArchive,
)
from app.models.roster import RosterChange  # noqa: F401, E402
