"""FHIR R4 (4.0.1) views of encounters: ExplanationOfBenefit (CARIN Blue Button shape), Claim,
ClaimResponse and Coverage, built from the Encounter aggregate's state (money through
``ledger.domain.figures``) and versioned by the encounter's events."""
