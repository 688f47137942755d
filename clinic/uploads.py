"""Uploaded files: checked by content and size before they are stored, served with fixed types.

A file's name and the browser's content type are whatever the sender chose, so neither is
trusted: the first bytes say what a file is, and the library that reads that format must open
it. Stored files get random names and are handed out only as the whitelisted types below, with
a sandbox policy, so that nothing uploaded can ever run as a page of this site.
"""

import base64
import io
import logging
import uuid
import warnings
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import FileResponse
from django.utils.deconstruct import deconstructible

logger = logging.getLogger(__name__)

PDF, JPEG, PNG, WEBP = "pdf", "jpeg", "png", "webp"
CONTENT_TYPES = {
    PDF: "application/pdf",
    JPEG: "image/jpeg",
    PNG: "image/png",
    WEBP: "image/webp",
}
EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png", WEBP: ".webp"}
NAMES = {PDF: "PDF", JPEG: "JPEG", PNG: "PNG", WEBP: "WebP"}
IMAGES = frozenset({JPEG, PNG, WEBP})
PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
# Served with every private file: a browser that is talked into rendering one anyway runs it
# in a sandbox with no scripts, no forms and no access to this site's cookies.
SANDBOX = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


def sniff(head: bytes) -> str | None:
    """The format the first bytes of a file announce, or None for anything else."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def _head(file, size=16) -> bytes:
    file.seek(0)
    head = file.read(size)
    file.seek(0)
    return head


def megabytes(size: int) -> str:
    value = size / 1_000_000
    return f"{value:.0f} MB" if value >= 10 or value == int(value) else f"{value:.1f} MB"


def _one_of(kinds) -> str:
    names = [NAMES[k] for k in kinds]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def is_new_upload(value) -> bool:
    """True for a file just sent by a browser, False for one already in storage."""
    return value is not None and not getattr(value, "_committed", False)


def _open_pdf(file):
    from pypdf import PdfReader

    reader = PdfReader(file, strict=False)
    if not reader.is_encrypted and len(reader.pages) < 1:
        raise ValueError("no pages")


def open_image(file, *, max_pixels=None):
    """A Pillow image of the file, refusing decompression bombs; the caller checks the format."""
    from PIL import Image

    limit = max_pixels or settings.UPLOAD_MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        file.seek(0)
        image = Image.open(file)
        if image.width * image.height > limit:
            raise Image.DecompressionBombError(f"{image.width} x {image.height} pixels")
        return image


@deconstructible
class UploadCheck:
    """A field validator: the file's size, then its real format, then that its reader opens it.

    Files already in storage are not checked again: an old record stays editable.
    """

    def __init__(self, kinds, limit_setting, what="file"):
        self.kinds = tuple(kinds)
        self.limit_setting = limit_setting
        self.what = what

    def __eq__(self, other):
        return isinstance(other, UploadCheck) and (
            self.kinds,
            self.limit_setting,
            self.what,
        ) == (other.kinds, other.limit_setting, other.what)

    def __call__(self, value):
        if not is_new_upload(value):
            return
        allowed = _one_of(self.kinds)
        limit = getattr(settings, self.limit_setting)
        if value.size > limit:
            raise ValidationError(
                f"The {self.what} is {megabytes(value.size)}; the limit is {megabytes(limit)}. "
                f"Upload a smaller {allowed} file.",
                code="too_large",
            )
        kind = sniff(_head(value))
        if kind not in self.kinds:
            raise ValidationError(
                f"The {self.what} must be a {allowed} file; this one is not, whatever its name "
                "says.",
                code="wrong_type",
            )
        try:
            if kind == PDF:
                _open_pdf(value)
            else:
                image = open_image(value)
                if image.format != PILLOW_FORMATS[kind]:
                    raise ValueError(image.format)
                image.verify()
        except Exception as error:
            from PIL import Image

            if isinstance(error, Image.DecompressionBombError):
                raise ValidationError(
                    f"The {self.what} is too large an image ({error}); the limit is "
                    f"{settings.UPLOAD_MAX_IMAGE_PIXELS // 1_000_000} megapixels.",
                    code="too_many_pixels",
                ) from None
            raise ValidationError(
                f"The {self.what} could not be read as a {NAMES[kind]} file: it is damaged or "
                f"not what it claims to be. Upload a {allowed} file.",
                code="unreadable",
            ) from None
        finally:
            value.seek(0)


def random_name(folder: str, filename: str) -> str:
    """A stored name that says nothing about the patient and cannot be guessed."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in {".pdf", ".jpg", ".jpeg", ".png", ".webp"}:
        suffix = ""
    return f"{folder}/{uuid.uuid4().hex}{suffix}"


def reencode_image(file, *, max_side=None) -> ContentFile:
    """The image drawn afresh: orientation applied, metadata (EXIF, GPS) left behind."""
    from PIL import ImageOps

    image = open_image(file)
    kind = {"JPEG": JPEG, "PNG": PNG, "WEBP": WEBP}.get(image.format, JPEG)
    image = ImageOps.exif_transpose(image)
    max_side = max_side or settings.PHOTO_MAX_SIDE
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    if kind == JPEG:
        image.convert("RGB").save(out, format="JPEG", quality=90)
    elif kind == PNG:
        image.save(out, format="PNG")
    else:
        image.save(out, format="WEBP", quality=90)
    file.seek(0)
    return ContentFile(out.getvalue(), name=f"photo{EXTENSIONS[kind]}")


def thumbnail_bytes(file, max_side) -> tuple[str, bytes]:
    """(content type, JPEG bytes) of a copy no larger than max_side, for reports."""
    image = open_image(file)
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=85)
    return CONTENT_TYPES[JPEG], out.getvalue()


def image_data_uri(field_file, max_side) -> str:
    """A PNG copy no larger than max_side as a data: URL ('' if the file cannot be read).

    PNG keeps a logo's transparency, which a JPEG copy would turn black.
    """
    from PIL import ImageOps

    try:
        with field_file.open("rb") as handle:
            image = ImageOps.exif_transpose(open_image(handle))
            image.thumbnail((max_side, max_side))
            out = io.BytesIO()
            image.save(out, format="PNG")
    except Exception:  # a damaged file must not take a document down
        logger.warning("Image %s unreadable", field_file.name, exc_info=True)
        return ""
    return f"data:image/png;base64,{base64.b64encode(out.getvalue()).decode()}"


def private_file_response(field_file, *, download_name, inline_images=False):
    """A stored file for a checked view: a whitelisted type, sandboxed, never cached.

    Anything whose first bytes are not an allowed format (a file stored before uploads were
    checked) goes out as an opaque download.
    """
    handle = field_file.open("rb")
    kind = sniff(_head(handle))
    content_type = CONTENT_TYPES.get(kind, "application/octet-stream")
    inline = inline_images and kind in IMAGES
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=f"{download_name}{EXTENSIONS.get(kind, '.bin')}",
        content_type=content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = SANDBOX
    response["Cache-Control"] = "private, no-store"
    return response


def private_thumbnail_response(field_file, max_side, *, download_name):
    """A small JPEG copy of a stored image for a checked view, with the same headers as
    private_file_response; a file that cannot be read as an image goes out as that does."""
    from django.http import HttpResponse

    try:
        with field_file.open("rb") as handle:
            content_type, data = thumbnail_bytes(handle, max_side)
    except Exception:  # not an image after all (a file stored before uploads were checked)
        logger.warning("No thumbnail for %s", field_file.name, exc_info=True)
        return private_file_response(field_file, download_name=download_name)
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'inline; filename="{download_name}-small.jpg"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = SANDBOX
    response["Cache-Control"] = "private, no-store"
    return response


class OversizedUpload(UploadedFile):
    """What is left of a file that passed the largest allowed size: its name and size only."""

    def __init__(self, name, content_type, size):
        super().__init__(io.BytesIO(), name=name, content_type=content_type, size=size)


class CappedUploadHandler(FileUploadHandler):
    """Stops keeping a file once it passes UPLOAD_MAX_BYTES, so that a huge upload fills no
    disk; the form's check then names the field and the limit."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0
        self.over = False

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.UPLOAD_MAX_BYTES:
            self.over = True
        return None if self.over else raw_data

    def file_complete(self, file_size):
        if not self.over:
            return None
        return OversizedUpload(self.file_name, self.content_type, self.received)
