"""The audit trail: the hash chain, signed checkpoints, audited refusals, the canary tripwire."""
