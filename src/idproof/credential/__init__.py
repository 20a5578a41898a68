"""The person-held credential: BBS (unlinkable, selective disclosure, one pseudonym per service) and
SD-JWT VC (interoperable, batches of once-only credentials)."""
