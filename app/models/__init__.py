"""The database schema, one module per area; import models from here.

- ``core``: people, numbers, data keys, users and roster, case assignments, audit chain.
- ``io``: CSV layouts, name-change history, pending portal tickets, export manifests.

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
from app.models.io import ExportItem, ExportLayout, IoTicket, NameChange  # noqa: F401
