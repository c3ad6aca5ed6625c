"""A reader's profile seeded from papers they know (subscribers.seeds reads them): each one becomes a "more like
this" rating. Papers we hold are rated at once; the others are looked up through the arXiv API source in a
task (subscribers.tasks.seed_fetch_task), a batch of ids per request on the shared arXiv clock, then rated."""

from pathlib import Path

from papers.ingest import fetch_and_ingest
from papers.models import CANDIDATE_WINDOW, Paper, today
from papers.sources import SourceError
from subscribers import feedback
from subscribers.models import Rating

# Ids per arXiv API request (one id_list): arXiv's own examples page by tens to hundreds; 50 keeps the URL
# short and a reader's 200 seeds to four requests, each waiting its turn on the 3-second clock.
SEED_FETCH_BATCH = 50
ARXIV_API_SPEC = "arxiv-api:{ids}"


def rate_known(subscriber_id: int, arxiv_ids: list[str]) -> list[str]:
    """Like the papers of these ids that we hold; the ids we don't hold, to look up."""
    held = dict(Paper.objects.filter(arxiv_id__in=arxiv_ids).values_list("arxiv_id", "pk"))
    for arxiv_id in arxiv_ids:
        if arxiv_id in held and feedback.current(subscriber_id, held[arxiv_id]) is None:
            feedback.rate(subscriber_id, held[arxiv_id], Rating.MORE)  # a rating the reader gave stays theirs
    return [arxiv_id for arxiv_id in arxiv_ids if arxiv_id not in held]


def fetch_and_rate(subscriber_id: int, arxiv_ids: list[str], path: Path | None = None) -> int:
    """Look the ids up on arXiv (`path`: a saved API answer instead of the network), store the papers and like
    them. They are stored as listed before the candidate window: papers the reader knows are not today's news.
    Returns how many papers were rated; ids arXiv doesn't know are left out."""
    listed = today() - CANDIDATE_WINDOW
    for start in range(0, len(arxiv_ids), SEED_FETCH_BATCH):
        batch = arxiv_ids[start : start + SEED_FETCH_BATCH]
        try:
            fetch_and_ingest(ARXIV_API_SPEC.format(ids=",".join(batch)), day=listed, path=path)
        except SourceError:
            continue  # this batch is lost (recorded in its FetchRun); the others may still work
    missing = rate_known(subscriber_id, arxiv_ids)
    return len(arxiv_ids) - len(missing)
