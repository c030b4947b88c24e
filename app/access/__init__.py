"""Who may do what: the permission table, the handler roster, accounts and their approvals, case assignment, TOTP and lockout."""
