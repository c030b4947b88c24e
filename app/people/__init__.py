"""People, households, their records and numbers."""
