import json
from datetime import date

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Q

from papers.models import Moderation, Paper
from papers.ranking import for_you

DEFAULT_LIMIT = 10


class Command(BaseCommand):
    help = 'Preview the "For you" list a reader with these interests would get, over the papers in the database.'

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interests", required=True, help='e.g. "continual learning, cs.LG, no quantum"')
        parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="a JSON list of {id, title, score, reason}"
        )
        parser.add_argument(
            "--since", type=date.fromisoformat, help="only papers published since YYYY-MM-DD (undated ones count)"
        )

    def handle(self, *args, interests: str, limit: int, as_json: bool, since: date | None, **options) -> None:
        papers = Paper.objects.exclude(moderation=Moderation.REJECTED)
        if since:
            papers = papers.filter(Q(published__gte=since) | Q(published__isnull=True))
        by_id = {p.pk: p for p in papers}
        picks = for_you(interests, list(by_id.values()), max(0, limit))
        rows = [
            {"id": p.paper_id, "title": by_id[p.paper_id].title, "score": p.score, "reason": p.reason} for p in picks
        ]
        if as_json:
            self.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for n, row in enumerate(rows, 1):
            self.stdout.write(f"{n:>2}. [{row['score']:.3f}] {row['title']}\n    {row['reason']}")
        if not rows:
            self.stdout.write("No paper matches these interests.")
