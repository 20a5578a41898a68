"""Document stage: read the identity document and hand the face stage its portrait."""

from idproof.document.portrait import DocumentReading, read_document

__all__ = ["DocumentReading", "read_document"]
