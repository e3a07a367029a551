"""Tamper evidence and audit controls (issue 8).

chain        the per-encounter hash chain (canonical bytes; the recorder mixin)
merkle       RFC 6962 trees: frontier, inclusion and consistency proofs
checkpoints  signed checkpoints over the event log, the job that writes and exports them
seals        signed seals over the read-access log
verify       `ledger verify`: chains, checkpoints, seals, snapshots; the first bad place
access       the read-access log: record_access, query_access
cli          `ledger verify`, `ledger checkpoints ...`
"""
