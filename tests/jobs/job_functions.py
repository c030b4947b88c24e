"""Job functions used by the job tests (importable by an RQ worker by dotted path)."""

from flask import current_app

from app.jobs import job


@job
def write_marker(name: str) -> str:
    """Records that it ran, in the instance folder (idempotent: writes once)."""
    from pathlib import Path

    marker = Path(current_app.config["MYNUMBER_HOME"]) / f"ran-{name}"
    if marker.exists():
        return "already"
    marker.write_text("ran")
    return "done"


@job
def always_fails(name: str) -> None:
    raise RuntimeError(f"job {name} failed on purpose")
