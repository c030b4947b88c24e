"""The end of a number's life: retention, disposal, the deletion certificate, return to the
client, backups."""
