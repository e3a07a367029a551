"""Code sets: real ICD-10-CM data, CPT/HCPCS formats, and the claim scrubber's lookups."""
