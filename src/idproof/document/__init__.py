"""Document stage: read the identity document (page photo or chip) and hand the face stage its portrait."""

from idproof.document.reading import ChipInput, DocumentPolicy, DocumentReading, read_chip, read_document

__all__ = ["ChipInput", "DocumentPolicy", "DocumentReading", "read_chip", "read_document"]
