"""Choosing each reader's list from the papers they matched: their best candidates first (one sort of packed
keys for a whole chunk of readers), then greedy maximal marginal relevance (MMR), so that a reader who follows
several topics gets several topics and never two versions of one work."""

import numpy as np

from papers.ranking.index import CandidateIndex

# MMR: each pick's score is lowered by its similarity to what the reader already got (papers on one topic are
# 0.5-0.7 alike: at 0.05 × that, a paper fifth on both relevance lists yields to a less alike one seventh, not
# to one thirtieth; at 0.3 a reader of one topic lost relevant papers to merely different ones)...
DIVERSITY_WEIGHT = 0.05
# ...and by this much for every paper already picked for the same topic, so "continual learning, speech"
# reads as both, not ten papers on one.
TOPIC_REPEAT_PENALTY = 0.05
# MMR looks at this many of each reader's best papers per pick it makes: room to diversify, little work.
MMR_POOL_FACTOR = 3

# A float32 score's bits, as best_first packs them into its sort keys.
FLOAT_BITS = 32
FLOAT_MASK = (1 << FLOAT_BITS) - 1


def best_first(
    rows: np.ndarray, positions: np.ndarray, scores: np.ndarray, n_rows: int, n_papers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, positions, scores) ordered by row, then score from best, then position: one sort of int64 keys,
    (row | score's bits, order-preserving and reversed | position), which also carry the values back."""
    position_bits = max(int(n_papers - 1).bit_length(), 1)
    row_bits = max(int(n_rows - 1).bit_length(), 1)
    if row_bits + FLOAT_BITS + position_bits > 63:
        raise ValueError(f"{n_rows} readers x {n_papers} papers do not fit one sort key: rank in smaller chunks")
    bits = scores.astype(np.float32).view(np.uint32)
    ascending = np.where(bits >> 31, ~bits, bits | np.uint32(1 << 31))  # unsigned order = float order
    descending = (np.uint32(FLOAT_MASK) - ascending).astype(np.int64)
    keys = np.sort((rows << (FLOAT_BITS + position_bits)) | (descending << position_bits) | positions)
    descending = ((keys >> position_bits) & FLOAT_MASK).astype(np.uint32)
    ascending = np.uint32(FLOAT_MASK) - descending
    bits = np.where(ascending >> 31, ascending & np.uint32(FLOAT_MASK >> 1), ~ascending)
    return keys >> (FLOAT_BITS + position_bits), keys & ((1 << position_bits) - 1), bits.view(np.float32)


def mmr(
    index: CandidateIndex, candidates: np.ndarray, score: np.ndarray, topic: np.ndarray, limits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy maximal marginal relevance for every reader of the chunk at once.

    Works on each reader's pool of best candidates (positions, -1 for none, and their scores), picks one paper per
    step: the best score minus similarity to what was already picked minus a penalty per paper already picked on
    the same topic. Near-duplicates of a picked paper are out. Returns (positions, scores, topics), -1 where
    nothing was left."""
    n = candidates.shape[0]
    k = int(limits.max()) if n else 0
    picked = np.full((n, k), -1, dtype=np.int64)
    picked_scores = np.zeros((n, k), dtype=np.float32)
    picked_topic = np.zeros((n, k), dtype=np.int64)
    if not n or not k or not candidates.shape[1]:
        return picked, picked_scores, picked_topic
    live = np.flatnonzero(candidates[:, 0] >= 0)  # readers with anything to pick from
    candidates, score, topic, limits = candidates[live], score[live].copy(), topic[live], limits[live]
    closeness = np.zeros(score.shape, dtype=np.float32)
    same_topic = np.zeros(score.shape, dtype=np.float32)  # papers already picked on each candidate's topic
    threshold = index.duplicate_threshold
    here = np.arange(live.size)
    for step in range(k):
        if not live.size:
            break
        if step:
            adjusted = score - DIVERSITY_WEIGHT * closeness - TOPIC_REPEAT_PENALTY * same_topic
            choice = np.argmax(adjusted, axis=1)
            best = adjusted[here, choice]
        else:  # nothing picked yet: each pool is best first, so its first paper
            choice, best = np.zeros(live.size, dtype=np.int64), score[:, 0]
        ok = np.isfinite(best) & (step < limits)
        chosen = candidates[here, choice]
        picked[live[ok], step] = chosen[ok]
        picked_scores[live[ok], step] = score[here, choice][ok]
        picked_topic[live[ok], step] = topic[here, choice][ok]
        if step == k - 1:
            break
        if not ok.all():  # a reader with nothing left (or a full list) is done: the next steps skip them
            keep, choice, chosen = np.flatnonzero(ok), choice[ok], chosen[ok]
            live, candidates, score, topic = live[keep], candidates[keep], score[keep], topic[keep]
            closeness, same_topic, limits = closeness[keep], same_topic[keep], limits[keep]
            here = np.arange(live.size)
        score[here, choice] = -np.inf
        similarity = np.take(index.similarity, chosen[:, None] * index.similarity.shape[1] + candidates)
        score[similarity >= threshold] = -np.inf  # a near-duplicate of a pick is out for good
        np.maximum(closeness, similarity, out=closeness)
        same_topic += topic == topic[here, choice][:, None]
    return picked, picked_scores, picked_topic
