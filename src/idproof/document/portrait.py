"""The reference portrait.

Today the document image is used as the portrait image itself: the face stage takes its largest face
(so smaller "ghost" portraits on an ID card are ignored). MRZ reading and chip data will add fields
to DocumentReading without changing how the face stage receives its portrait.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DocumentReading:
    portrait_image: np.ndarray = field(repr=False)  # RGB uint8; memory only
    source: str = "document_image"


def read_document(rgb: np.ndarray) -> DocumentReading:
    return DocumentReading(portrait_image=rgb)
