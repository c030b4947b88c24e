"""The audit trail: the hash chain, signed checkpoints, audited refusals, the canary tripwire;
reading it (``browse``: filters in JST, pages, the audited CSV) in Japanese (``labels``)."""
