"""Plumbing the domain relies on: mail, PDFs, the outbox, database roles, instance set-up, outage handling."""
