"""Authors a reader follows, kept where the ranking already reads them: "author: Name" lines of their interests
(papers.interests), so a followed author's new papers get the author wish's score (AUTHOR_SCORE) and lead "For
you". Following from a paper's page adds a line; the preferences page lists and removes them."""

import re

from django.db import transaction

from papers.interests import AUTHOR_PREFIX, SEPARATORS, author_key
from subscribers.forms import MAX_INTERESTS_LENGTH
from subscribers.models import Subscriber

AUTHOR_LINE = "author: {name}"
# A name as a paper lists it, short enough for a line of interests.
MAX_AUTHOR_CHARS = 120


def clean_name(name: str) -> str:
    """A name the interests text can hold: "Last, First" turned round (a comma would split the line), no
    separators or line breaks, spaces folded; '' when nothing is left."""
    name = " ".join(name.split())
    if name.count(",") == 1:
        last, first = (part.strip() for part in name.split(","))
        name = f"{first} {last}".strip()
    return " ".join(SEPARATORS.sub(" ", name).split())[:MAX_AUTHOR_CHARS]


def author_in(piece: str) -> str | None:
    """The author one piece of the interests text follows ("author: Name"), as written; None for a topic."""
    piece = piece.strip()
    return AUTHOR_PREFIX.sub("", piece) if AUTHOR_PREFIX.match(piece) else None


def followed(interests: str) -> list[str]:
    """The names of the authors the interests text follows, as written."""
    return [name for piece in SEPARATORS.split(interests) if (name := author_in(piece)) is not None]


def same_author(name: str, other: str) -> bool:
    return author_key(clean_name(name)) == author_key(clean_name(other))


def follows(subscriber: Subscriber, name: str) -> bool:
    key = author_key(clean_name(name))
    return any(author_key(n) == key for n in followed(subscriber.interests))


def follow(subscriber_id: int, name: str) -> bool:
    """Add the author to the reader's interests; False when they follow them already or there is no room."""
    name = clean_name(name)
    if not name:
        return False
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None or follows(subscriber, name):
            return False
        interests = "\n".join(filter(None, [subscriber.interests.strip(), AUTHOR_LINE.format(name=name)]))
        if len(interests) > MAX_INTERESTS_LENGTH:
            return False
        Subscriber.objects.filter(pk=subscriber_id).update(interests=interests)
    return True


def unfollow(subscriber_id: int, name: str) -> bool:
    """Remove the author from the reader's interests (every way it was written); False when not followed."""
    key = author_key(clean_name(name))
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None:
            return False
        kept, dropped = [], False
        for line in subscriber.interests.splitlines():
            pieces = re.split(r"([,;])", line)  # keep the reader's own separators on the lines that stay
            text_pieces = pieces[0::2]
            keep = [p for p in text_pieces if (name := author_in(p)) is None or author_key(name) != key]
            dropped = dropped or len(keep) != len(text_pieces)
            if keep != text_pieces:
                line = ",".join(keep)
            if line.strip(" ,;"):
                kept.append(line)
        if dropped:
            Subscriber.objects.filter(pk=subscriber_id).update(interests="\n".join(kept))
    return dropped
