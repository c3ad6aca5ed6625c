"""What the ranking tests share: the 79 real seed papers as database rows."""

import json

from papers.models import Paper
from tests.conftest import fixture_path


def seed_papers() -> list[Paper]:
    """The seed page's papers (title and abstract only, as the page had), stored the way ingest stores them."""
    items = json.loads(fixture_path("seed_papers.json").read_text())["papers"]
    Paper.objects.bulk_create(
        Paper(canonical_id=f"seed:{i}", title=p["title"], abstract=p["abstract"]) for i, p in enumerate(items)
    )
    return list(Paper.objects.order_by("pk"))
