"""Reading the PDFs the service makes, as a reader's viewer would: text, document info, images.

pypdf is pure Python and installed with the test tools, so these checks run on every machine the README's
test command has set up; nothing here needs a program such as pdftotext on the PATH.
"""

from __future__ import annotations

import io
import re

from pypdf import PdfReader


def _reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf), strict=True)


def pdf_text(pdf: bytes, *, layout: bool = False) -> str:
    """The text of every page: whitespace collapsed to single spaces, or as laid out on the page when layout
    is set (one line of text per printed line, columns kept apart by spaces)."""
    reader = _reader(pdf)
    if layout:
        return "\n".join(page.extract_text(extraction_mode="layout") for page in reader.pages)
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def pdf_info(pdf: bytes) -> dict[str, str]:
    """The document information (Title, Author, Subject, Producer, …) and the page count as "Pages"."""
    reader = _reader(pdf)
    info = {str(key).lstrip("/"): str(value) for key, value in (reader.metadata or {}).items()}
    info["Pages"] = str(len(reader.pages))
    return info


def pdf_image_count(pdf: bytes) -> int:
    """How many images the pages draw."""
    return sum(len(page.images) for page in _reader(pdf).pages)
