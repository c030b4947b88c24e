"""The database schema, one module per area; import models from here.

- ``core``: people, numbers, data keys, users and roster, case assignments, audit chain.
- ``roster``: proposed roster changes awaiting the client's approval.
- ``billing``: unit prices, billable events, the carrier's fee table, postage entries.
- ``intake``: collection requests (token hash, second factor, status history), sealed
  submissions and their parts, inquiries from the public contact form.
- ``io``: CSV layouts, name-change history, pending portal tickets, export manifests.
- ``collection``: campaigns and the client's letter texts, deliveries (e-mail / post) with
  retry state, print batches, reminders, paper intake with double keying, verification cases,
  ID images kept under the person's DEK when the client's policy says so.
- ``lifecycle``: retention rules, disposal requests and items, backups, return archives.

Every table lives on FAB's declarative ``Model.metadata`` (Alembic's target); every change
comes with a migration in ``migrations/versions``.
"""

from app.models.billing import (  # noqa: F401, E402
    BillableEvent,
    BillingCategory,
    PostageEntry,
    PostageRate,
    UnitPrice,
)
from app.models.collection import (  # noqa: F401
    Campaign,
    CampaignKind,
    CampaignOperator,
    CaseStatus,
    Channel,
    Decision,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    LetterKind,
    LetterTemplate,
    PaperIntake,
    PaperIntakeStatus,
    PaperPart,
    PrintBatch,
    PrintBatchFile,
    Reminder,
    RetainedDocument,
    Stage,
    TargetUpload,
    VerificationCase,
)
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

# The inquiry desk and 情報管理体制図: app.operations.desk, app.operations.governance.
from app.models.governance import HandlingChart  # noqa: F401, E402
from app.models.intake import (  # noqa: F401
    CollectionRequest,
    CollectionRequestStatus,
    Inquiry,
    InquiryAction,
    InquirySource,
    InquiryStatus,
    RequestStatus,
    Submission,
    SubmissionPart,
    SubmissionStatus,
)
from app.models.io import ExportItem, ExportLayout, IoTicket, NameChange  # noqa: F401
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
from app.models.outbox import OutboxMessage, OutboxState  # noqa: F401, E402

# -- monthly usage report --------------------------------------------------
from app.models.reports import (  # noqa: F401, E402
    MonthlyReport,
    PlannedVolume,
    ReportDelivery,
    ReportVersion,
)
from app.models.roster import AccountChange, RosterChange  # noqa: F401, E402
from app.models.system_sealed import (  # noqa: F401
    DISPOSED_PERSON,
    IO_TICKET,
    PRINT_FILE,
    TARGET_UPLOAD,
    TARGET_UPLOAD_RESULT,
    TOTP_SECRET,
    SystemSealed,
    sealed_columns,
)
