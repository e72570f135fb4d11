"""Look and wording shared by the PDF layouts: fonts, colours, paragraph styles, plain-language text."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

from pixelcheck.analysis.detector.verdict import Band, Label, SignatureState, Verdict
from pixelcheck.reports.document import EntryState, ReportEntry

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT = "PixelCheckSans"
FONT_BOLD = "PixelCheckSans-Bold"

# PDF standard Asian fonts: not embedded, text stays extractable, viewers substitute their own.
CID_CHINESE = "STSong-Light"
CID_JAPANESE = "HeiseiKakuGo-W5"
CID_KOREAN = "HYGothic-Medium"
REPLACEMENT = "\ufffd"

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#616e7c")
RULE = colors.HexColor("#cbd2d9")
PANEL = colors.HexColor("#f5f7fa")
AI_COLOUR = colors.HexColor("#c2410c")
REAL_COLOUR = colors.HexColor("#1d4ed8")
PENDING_COLOUR = colors.HexColor("#7b8794")
FAILED_COLOUR = colors.HexColor("#b91c1c")

VERDICT_WORDS = {Label.AI: "Likely AI-generated", Label.REAL: "Likely a real photograph"}
FOOTAGE_WORDS = "Likely real camera footage"  # a clip's or an animation's REAL verdict, as fusion words it
SUBJECT_NOUNS = {"VIDEO": "clip", "ANIMATED": "animation"}  # by Timeline.media_kind
SIGNAL_TITLES = {
    "content_credentials": "Content Credentials (C2PA)",
    "generator_metadata": "Generator traces in the file",
    "camera_metadata": "Camera data (EXIF)",
    "pixel_model": "Pixel texture model",
    "invisible_watermark": "Invisible watermark",
}
BAND_WORDS = {Band.LOW: "low confidence", Band.MEDIUM: "medium confidence", Band.HIGH: "high confidence"}
BAND_SHORT = {Band.LOW: "low", Band.MEDIUM: "medium", Band.HIGH: "high"}
STATE_WORDS = {
    EntryState.QUEUED: "Waiting for analysis",
    EntryState.RUNNING: "Being analysed",
    EntryState.SUCCEEDED: "Analysed",
    EntryState.FAILED: "Analysis failed",
    EntryState.DELETED: "Image deleted",
}
SIGNATURE_WORDS = {
    SignatureState.ABSENT: "No Content Credentials in the file",
    SignatureState.VALID: "Present and intact: the signature verifies (which does not vouch for the signer)",
    SignatureState.INVALID: "Present, but broken: the image or its credentials were changed after signing",
    SignatureState.UNREADABLE: "Present, but they could not be read",
}
SOURCE_TYPE_WORDS = {
    "trainedAlgorithmicMedia": "created by an AI model",
    "compositeWithTrainedAlgorithmicMedia": "a composite that includes AI-generated parts",
    "algorithmicMedia": "created by a computer program (not a camera)",
    "digitalCapture": "captured by a camera",
    "negativeFilm": "scanned from a film negative",
    "positiveFilm": "scanned from film",
    "print": "scanned from a print",
    "minorHumanEdits": "a capture with minor human edits",
    "humanEdits": "edited by a person",
    "composite": "a composite of several images",
    "compositeCapture": "a composite of several camera captures",
    "screenCapture": "a screenshot",
    "virtualRecording": "a recording of a virtual scene",
    "dataDrivenMedia": "produced from data",
}

HOW_TO_READ_CONFIDENCE = (
    "<b>How to read this report.</b> The confidence is the detector's own estimate of how likely its "
    "verdict is to be right: even at 90% about one such verdict in ten can be wrong. The band (low, "
    "medium, high) sums it up; low means the evidence is mixed, so treat the verdict as a hint only."
)
HOW_TO_READ_SIGNALS = (
    "Each signal bar shows how strongly one clue points towards a real photograph (left) or an AI "
    "image (right); the weight says how much that clue counts in the verdict."
)
HOW_TO_READ_REGION_MAP = (
    "How to read the map: each box is one region of the image, coloured by how AI-like the pixel model "
    "finds it there, from dark purple (reads as a real photograph) to yellow (reads as AI-generated); "
    "it shows where the evidence lies, while the verdict above weighs the whole image."
)
HOW_TO_READ_CREDENTIALS = (
    "Content Credentials are a signed record of where an image came from; their absence proves "
    "nothing, since most images carry none and they are easily stripped."
)
CANNOT_SEE = (
    "<b>What the detector cannot see.</b> It judges the pixels and the file it was given, not the "
    "scene: it cannot tell whether a real photograph is staged or misleading, and it may miss images "
    "from generators it was not trained on, or images that were resized, recompressed, cropped or "
    "screenshotted many times. Heavy editing of a real photograph can look like generation. A "
    "verdict is evidence to weigh with other sources, never proof on its own."
)


@cache
def register_fonts() -> None:
    """Register the shipped DejaVu Sans faces and the standard Asian fallback fonts, once per process."""
    pdfmetrics.registerFont(TTFont(FONT, str(FONT_DIR / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONT_DIR / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)
    for name in (CID_CHINESE, CID_JAPANESE, CID_KOREAN):
        pdfmetrics.registerFont(UnicodeCIDFont(name))


@cache
def _covered() -> frozenset[int]:
    register_fonts()
    regular = pdfmetrics.getFont(FONT).face.charToGlyph
    bold = pdfmetrics.getFont(FONT_BOLD).face.charToGlyph
    return frozenset(regular.keys() & bold.keys())


def _cid_font(char: str) -> str | None:
    """Return the standard Asian font for a CJK character, or None when the character is not CJK."""
    code = ord(char)
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return CID_JAPANESE
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return CID_KOREAN
    if (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x3000 <= code <= 0x303F
        or 0xFF00 <= code <= 0xFFEF
        or 0xF900 <= code <= 0xFAFF
    ):
        return CID_CHINESE
    return None


def safe_text(text: str, *, keep_cjk: bool = True) -> str:
    """Return text with every character the report fonts cannot draw replaced by U+FFFD.

    CJK characters are kept when keep_cjk is set (markup() routes them to a standard Asian font),
    replaced otherwise; control characters other than tab and newline become spaces.
    """
    covered = _covered()
    out = []
    for char in unicodedata.normalize("NFC", text):
        if char in "\t\n" or ord(char) in covered or (keep_cjk and _cid_font(char)):
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(" ")
        else:
            out.append(REPLACEMENT)
    return "".join(out)


def markup(text: str) -> str:
    """Return text as Paragraph markup: XML-escaped, CJK runs wrapped in a font that has them.

    No character is dropped: one that no font covers is shown as U+FFFD.
    """
    pieces: list[str] = []
    run_font: str | None = None
    run: list[str] = []

    def flush() -> None:
        if run:
            chunk = escape("".join(run))
            pieces.append(f'<font name="{run_font}">{chunk}</font>' if run_font else chunk)
            run.clear()

    for char in safe_text(text):
        font = _cid_font(char) if ord(char) not in _covered() else None
        if font != run_font:
            flush()
            run_font = font
        run.append(char)
    flush()
    return "".join(pieces).replace("\n", "<br/>")


def style(
    name: str,
    size: float = 9.5,
    *,
    bold: bool = False,
    colour: colors.Color = INK,
    leading: float | None = None,
    space_after: float = 0,
) -> ParagraphStyle:
    """Return a paragraph style in the report fonts."""
    return ParagraphStyle(
        name,
        fontName=FONT_BOLD if bold else FONT,
        fontSize=size,
        leading=leading if leading is not None else size * 1.3,
        textColor=colour,
        alignment=TA_LEFT,
        spaceAfter=space_after,
        splitLongWords=True,
    )


TITLE = style("title", 20, bold=True, space_after=4)
SUBTITLE = style("subtitle", 10, colour=MUTED, space_after=2)
HEADING = style("heading", 12.5, bold=True, leading=16, space_after=4)
BODY = style("body", 9.5, space_after=2)
SMALL = style("small", 8, colour=MUTED)
CELL = style("cell", 8.5)
CELL_BOLD = style("cell-bold", 8.5, bold=True)
DIGEST = style("digest", 7.4)
NOTE = style("note", 8.5, colour=INK, leading=11.5, space_after=5)


def verdict_colour(label: Label) -> colors.Color:
    """Return the accent colour of a label."""
    return AI_COLOUR if label is Label.AI else REAL_COLOUR


def percent(value: float) -> str:
    """Format a 0..1 value as a whole percentage, e.g. 0.873 -> '87%'; out-of-range values are clamped."""
    return f"{round(min(1.0, max(0.0, value)) * 100):d}%"


def confidence_words(verdict: Verdict) -> str:
    """Return e.g. '87% (high confidence)'."""
    return f"{percent(verdict.confidence)} ({BAND_WORDS[verdict.band]})"


def format_datetime(value: datetime | None) -> str:
    """Format a time as e.g. '26 Nov 2025, 15:50 UTC'; a naive time is taken as UTC."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def format_bytes(size: int) -> str:
    """Format a byte count for people, e.g. 2.4 MB."""
    if size < 1000:
        return f"{size} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if size < scale * 1000 or unit == "GB":
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def format_duration(ms: float | None) -> str:
    """Format milliseconds for people, e.g. 840 ms or 2.3 s."""
    if ms is None:
        return "—"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def subject_of(entry: ReportEntry) -> str:
    """What a report calls the entry's file: "image", or "clip" or "animation" for one judged frame by frame
    (a clip is known by its type before its verdict, an animation by its verdict's timeline)."""
    timeline = entry.verdict.timeline if entry.verdict is not None else None
    if timeline is not None:
        return SUBJECT_NOUNS.get(timeline.media_kind, "image")
    return "clip" if entry.content_type.startswith("video/") else "image"


def verdict_words(label: Label, subject: str = "image") -> str:
    """The verdict in words: "Likely AI-generated", "Likely a real photograph" or, for moving pictures, "Likely
    real camera footage"."""
    return FOOTAGE_WORDS if label is Label.REAL and subject != "image" else VERDICT_WORDS[label]


def entry_status(entry: ReportEntry) -> tuple[str, colors.Color]:
    """Return the one-line outcome of an entry in words, with its colour."""
    if entry.verdict is not None and entry.state in (EntryState.SUCCEEDED, EntryState.DELETED):
        return verdict_words(entry.verdict.label, subject_of(entry)), verdict_colour(entry.verdict.label)
    if entry.state is EntryState.QUEUED:
        return "Pending: waiting for analysis", PENDING_COLOUR
    if entry.state is EntryState.RUNNING:
        return "Pending: analysis in progress", PENDING_COLOUR
    if entry.state is EntryState.FAILED:
        return "Analysis failed", FAILED_COLOUR
    if entry.state is EntryState.DELETED:
        return f"{subject_of(entry).capitalize()} deleted before a verdict was recorded", PENDING_COLOUR
    return "No verdict recorded", PENDING_COLOUR


def entry_note(entry: ReportEntry) -> str:
    """Return the plain-text remark that goes under an entry's outcome ('' when there is none)."""
    if entry.state is EntryState.FAILED:
        reason = entry.failure_reason.strip() or "no reason was recorded"
        return f"Reason: {reason}"
    subject = subject_of(entry)
    if entry.state is EntryState.DELETED:
        if entry.verdict is not None:
            return f"The {subject} was deleted after analysis; the verdict is kept, the preview is not."
        return f"The {subject} was deleted; there is no preview and no verdict."
    if entry.state in (EntryState.QUEUED, EntryState.RUNNING):
        return f"This {subject} had no verdict yet when the report was made."
    return ""


def source_type_words(source_type: str) -> str:
    """Return the IPTC digital source type in words, keeping unknown values as they are."""
    key = source_type.rsplit("/", 1)[-1]
    words = SOURCE_TYPE_WORDS.get(key)
    return f"{words} ({key})" if words else source_type
