"""Former home of the audit settings: they are fields of the one ``ledger.config.Settings``
(issue 15). These names stay for callers not yet moved (``ledger.audit.sealing``, tests,
bench); ``get_audit_settings`` is ``get_settings`` itself, so clearing its cache clears the one
settings object's."""

from __future__ import annotations

from ledger.config import Settings as AuditSettings
from ledger.config import get_settings as get_audit_settings

__all__ = ["AuditSettings", "get_audit_settings"]
