"""CSV in and out: the client's layouts, field rules, encodings, bulk encryption and writes.

- ``fields``: the rules every value obeys, shared by the import and the portal's edit forms.
- ``layouts``: the field catalogue, layouts (columns, labels, date format, encoding).
- ``csvio``: reading with encoding detection (UTF-8 with/without BOM, CP932), writing with
  BOM or CP932 and formula neutralisation.
- ``bulk``: the vault's envelope format produced and opened in bulk, and batched writes
  (PostgreSQL COPY, SQLAlchemy Core elsewhere).
"""
