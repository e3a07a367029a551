"""The Encounter aggregate, split by sub-domain (issue 15).

``aggregate.py`` holds the aggregate class, its events and how each is applied; the command
methods live with their sub-domain (``coding``, ``charges``, ``claims``, ``remittance``,
``appeals``, ``patient_account``, ``disputes``, ``grants``) as mixins of ``Encounter``, and
``rules.py`` the rules several of them share. A mixin's methods check every rule, then trigger
the aggregate's events; the aggregate holds the state and how each event is applied. Events
were stored under ``ledger.domain.encounter:Encounter.<Name>`` before the split:
``ledger.persistence.topics`` registers those topics.
"""

from ledger.domain.encounter.aggregate import Encounter
from ledger.domain.encounter.grants import GRANT_BASES, GRANTOR_ROLES
from ledger.domain.encounter.remittance import DRG_RE, POSTABLE_STATUSES, DuplicatePayment
from ledger.domain.encounter.rules import ADVOCATE_ROLE, MAX_DIAGNOSES

__all__ = [
    "ADVOCATE_ROLE",
    "DRG_RE",
    "GRANTOR_ROLES",
    "GRANT_BASES",
    "MAX_DIAGNOSES",
    "POSTABLE_STATUSES",
    "DuplicatePayment",
    "Encounter",
]
