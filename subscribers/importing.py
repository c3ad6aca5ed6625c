"""Subscribers in and out as CSV: bulk import (email plus optional interests) and export.

Suppressed and unsubscribed addresses are refused and reported, never re-subscribed by an import.
"""

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from subscribers.addresses import normalize_address
from subscribers.models import Subscriber, Suppression, email_hash

# Rows per database round trip: a few queries per thousand addresses, and bounded memory on huge files.
IMPORT_BATCH_SIZE = 1000
INTERESTS_MAX_CHARS = 2000  # what the preferences form allows; longer is a paste accident
EMAIL_MAX_CHARS = 254  # Subscriber.email's length, the RFC's practical limit
REFUSALS_KEPT = 1000  # reported in full up to this many; the count is always exact
EXPORT_FIELDS = ("email", "status", "interests", "frequency", "created_at", "confirmed_at", "unsubscribed_at")
# A spreadsheet would run a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ImportResult:
    imported: int = 0
    updated: int = 0
    refused: int = 0
    refusals: list[tuple[int, str, str]] = field(default_factory=list)  # (line, address, why)

    def summary(self) -> str:
        return f"imported={self.imported} updated={self.updated} refused={self.refused}"

    def refuse(self, line: int, address: str, why: str) -> None:
        self.refused += 1
        if len(self.refusals) < REFUSALS_KEPT:
            self.refusals.append((line, address[:EMAIL_MAX_CHARS], why))


class ImportFileError(Exception):
    """The file as a whole cannot be read as a subscriber CSV."""


def read_rows(lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, email, interests) from CSV text. A header naming `email` is optional; without one the
    first column is the address and the second the interests."""
    reader = csv.reader(lines)
    try:
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            header = [cell.strip().lower() for cell in row]
            if "email" in header:
                email_col = header.index("email")
                interests_col = header.index("interests") if "interests" in header else None
            else:
                email_col, interests_col = 0, 1
                yield reader.line_num, row[0], row[1] if len(row) > 1 else ""
            break
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            email = row[email_col] if len(row) > email_col else ""
            interests = row[interests_col] if interests_col is not None and len(row) > interests_col else ""
            yield reader.line_num, email, interests
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: {exc}") from None


def open_text(data: bytes) -> io.StringIO:
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError:
        raise ImportFileError("the file is not UTF-8 text (save the CSV as UTF-8)") from None


def import_subscribers(
    rows: Iterable[tuple[int, str, str]], confirmed: bool = False, progress: Callable[[int], None] | None = None
) -> ImportResult:
    """Create new subscribers and update the interests of existing ones, in batches.

    New addresses start pending (they confirm by email) unless `confirmed` says the operator holds their
    consent; then they are active, and existing pending ones become active too."""
    result = ImportResult()
    seen: set[str] = set()
    batch: list[tuple[int, str, str]] = []
    for line, raw_email, raw_interests in rows:
        interests = raw_interests.strip()
        if not raw_email.strip():
            result.refuse(line, raw_email, "no address")
            continue
        try:  # the same rules, and the same stored form, as the sign-up form
            email = normalize_address(raw_email)
        except ValidationError:
            result.refuse(line, raw_email, "not a valid address")
            continue
        if len(interests) > INTERESTS_MAX_CHARS:
            result.refuse(line, email, f"interests longer than {INTERESTS_MAX_CHARS} characters")
            continue
        if email.lower() in seen:
            result.refuse(line, email, "repeated in this file")
            continue
        seen.add(email.lower())
        batch.append((line, email, interests))
        if len(batch) >= IMPORT_BATCH_SIZE:
            _import_batch(batch, confirmed, result)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        _import_batch(batch, confirmed, result)
        if progress:
            progress(len(batch))
    return result


def _import_batch(batch: list[tuple[int, str, str]], confirmed: bool, result: ImportResult) -> None:
    now = timezone.now()
    hashes = {email: email_hash(email) for _, email, _ in batch}
    suppressed = set(Suppression.objects.filter(email_hash__in=hashes.values()).values_list("email_hash", flat=True))
    existing = {
        s.email_lower: s
        for s in Subscriber.objects.annotate(email_lower=Lower("email")).filter(
            email_lower__in=[email.lower() for email in hashes]
        )
    }
    new, changed = [], []
    for line, email, interests in batch:
        subscriber = existing.get(email.lower())
        if hashes[email] in suppressed or (subscriber and subscriber.status == Subscriber.Status.SUPPRESSED):
            result.refuse(line, email, "suppressed (bounced, complained or deleted)")
            continue
        if subscriber is None:
            status = Subscriber.Status.ACTIVE if confirmed else Subscriber.Status.PENDING
            new.append(
                Subscriber(email=email, interests=interests, status=status, confirmed_at=now if confirmed else None)
            )
            continue
        if subscriber.status == Subscriber.Status.UNSUBSCRIBED:
            result.refuse(line, email, "unsubscribed (only they can subscribe again)")
            continue
        if interests:
            subscriber.interests = interests
        if confirmed and subscriber.status == Subscriber.Status.PENDING:
            subscriber.status, subscriber.confirmed_at = Subscriber.Status.ACTIVE, now
        subscriber.updated_at = now
        changed.append(subscriber)
    with transaction.atomic():
        Subscriber.objects.bulk_create(new, ignore_conflicts=True)
        Subscriber.objects.bulk_update(changed, ["interests", "status", "confirmed_at", "updated_at"])
    result.imported += len(new)
    result.updated += len(changed)


def _cell(value: object) -> str:
    text = "" if value is None else (value.isoformat() if hasattr(value, "isoformat") else str(value))
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def export_rows(subscribers) -> Iterator[str]:
    """CSV lines (header first) for a queryset of subscribers, streamed in batches."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Iterable[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(EXPORT_FIELDS)
    for subscriber in subscribers.only(*EXPORT_FIELDS).iterator(chunk_size=IMPORT_BATCH_SIZE):
        yield line(_cell(getattr(subscriber, name)) for name in EXPORT_FIELDS)
