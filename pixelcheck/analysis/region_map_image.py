"""The region map as a picture: the image, downscaled, tinted region by region, and a legend below.

Colours follow viridis (dark purple = reads as a real photograph, yellow = reads as AI-generated): it is
perceptually uniform and stays readable with the common colour-vision deficiencies and in grey print.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from pixelcheck.analysis.detector.animation import first_picture, frame_picture
from pixelcheck.analysis.detector.regions import RegionMapView, RegionScore

# viridis at 0, 1/8, ..., 1 (matplotlib's table); colours in between are interpolated linearly.
_VIRIDIS = ((68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140), (40, 174, 128),
            (94, 201, 98), (173, 220, 48), (253, 231, 37))
_TINT = 0.45  # share of the colour in a tinted pixel: the picture stays recognisable underneath
_MIN_WIDTH = 360  # a narrow picture still gets a legend wide enough to read


def colour(prob_ai: float) -> tuple[int, int, int]:
    """The viridis colour of a probability (0 = real, 1 = AI)."""
    position = min(1.0, max(0.0, prob_ai)) * (len(_VIRIDIS) - 1)
    low = min(int(position), len(_VIRIDIS) - 2)
    share = position - low
    a, b = _VIRIDIS[low], _VIRIDIS[low + 1]
    return (round(a[0] + (b[0] - a[0]) * share), round(a[1] + (b[1] - a[1]) * share),
            round(a[2] + (b[2] - a[2]) * share))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def overlay(rgb: Image.Image, regions: tuple[RegionScore, ...], max_side: int) -> Image.Image:
    """The picture scaled to fit max_side with each region tinted by its score and outlined."""
    scale = min(1.0, max_side / max(rgb.width, rgb.height))
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    picture = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    tint = Image.new("RGB", size)
    draw = ImageDraw.Draw(tint)
    boxes = []
    for region in regions:
        left, top, right, bottom = region.box
        box = (round(left * scale), round(top * scale), round(right * scale) - 1, round(bottom * scale) - 1)
        draw.rectangle(box, fill=colour(region.prob_ai))
        boxes.append(box)
    tinted = Image.blend(picture, tint, _TINT)
    lines = ImageDraw.Draw(tinted)
    for box in boxes:
        lines.rectangle(box, outline=(255, 255, 255), width=1)
    return tinted


def legend(width: int) -> Image.Image:
    """A colour bar from 0% to 100% AI with its labels, on white."""
    size = max(12, min(16, round(width / 32)))  # about 7 pt wherever the picture is printed in a report
    text = _font(size)
    margin, bar_top, bar_height = 12, size + 9, size
    height = bar_top + bar_height + size + 10
    panel = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    draw.text((margin, 3), "Pixel model's P(AI) per region", fill=(30, 30, 30), font=text)
    span = width - 2 * margin
    for x in range(span):
        draw.line([(margin + x, bar_top), (margin + x, bar_top + bar_height)], fill=colour(x / max(1, span - 1)))
    draw.rectangle((margin, bar_top, margin + span - 1, bar_top + bar_height), outline=(90, 90, 90))
    labels = (("0% (real photo)", 0.0, "la"), ("50%", 0.5, "ma"), ("100% (AI)", 1.0, "ra"))
    for words, share, anchor in labels:
        draw.text((margin + share * (span - 1), bar_top + bar_height + 4), words, fill=(30, 30, 30), font=text,
                  anchor=anchor)
    return panel


def region_map_picture(rgb: Image.Image, regions: tuple[RegionScore, ...], max_side: int) -> Image.Image:
    """Overlay above legend, as one RGB picture."""
    tinted = overlay(rgb, regions, max_side)
    width = max(tinted.width, _MIN_WIDTH)
    key = legend(width)
    canvas = Image.new("RGB", (width, tinted.height + key.height), (255, 255, 255))
    canvas.paste(tinted, ((width - tinted.width) // 2, 0))
    canvas.paste(key, (0, tinted.height))
    return canvas


def render_region_map(source: bytes | str, view: RegionMapView, max_side: int, *,
                      frame: int | None = None) -> tuple[bytes, int, int]:
    """PNG bytes, width and height of the region-map picture of an uploaded file (its bytes, or a clip's path; of
    its frame `frame`, when given, else its first picture) and its READY map."""
    rgb = first_picture(source) if frame is None else frame_picture(source, frame)
    picture = region_map_picture(rgb, view.regions, max_side)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", optimize=False, compress_level=6)
    return buffer.getvalue(), picture.width, picture.height
