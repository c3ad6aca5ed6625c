"""Which papers each reader sees: trending score, relevance to interests, editorial overrides, diversity.

- trending.py: the section everyone shares (community signals halved every TRENDING_HALF_LIFE_HOURS, editorial
  boosts, pinned papers first).
- analyze.py: text as the ranking reads it (TF-IDF terms, title keys).
- index.py: the candidate index, built once per set of candidate papers and kept for a send's chunks.
- lexical.py: BM25 over the candidates, the lexical side of relevance.
- expansion.py: a topic read the way the papers say it: acronyms spelled out from the candidates' own
  definitions, the model's nearest candidate terms.
- topics.py: every distinct interest topic scored against the candidates (BM25 alone, or fused by rank with
  the sentence-embedding model when it is on).
- readers.py: a chunk of readers' interests as arrays.
- mmr.py: each reader's best candidates, then maximal marginal relevance for diversity.
- picks.py: the picks and their reasons, kept as arrays for a send.
- foryou.py: "For you" for many readers at once, from the parts above.
- repeats.py: never the same work twice to a reader.
"""

from papers.caches import clear_all as clear_caches
from papers.interests import interests_of
from papers.ranking.analyze import analyze, stop_words, title_key
from papers.ranking.foryou import for_you, for_you_many
from papers.ranking.index import CandidateIndex, candidate_index
from papers.ranking.picks import Pick, PickLists
from papers.ranking.repeats import REPEAT_LOOKBACK, with_title_twins
from papers.ranking.trending import rank_trending, trending_score

__all__ = [
    "REPEAT_LOOKBACK",
    "CandidateIndex",
    "Pick",
    "PickLists",
    "analyze",
    "candidate_index",
    "clear_caches",
    "for_you",
    "for_you_many",
    "interests_of",
    "rank_trending",
    "stop_words",
    "title_key",
    "trending_score",
    "with_title_twins",
]
