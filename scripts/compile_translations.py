"""Compile app/translations/*/LC_MESSAGES/messages.po into .mo (run after editing a .po)."""

from pathlib import Path

from babel.messages import mofile, pofile

for po in Path(__file__).resolve().parents[1].glob("app/translations/*/LC_MESSAGES/*.po"):
    with po.open("rb") as handle:
        catalog = pofile.read_po(handle)
    with po.with_suffix(".mo").open("wb") as handle:
        mofile.write_mo(handle, catalog)
    print(f"compiled {po}")
