"""The trending score and the shared "Trending today" section: decay, editorial overrides, moderation mode."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from newsletter.digests.build import build_digest, candidate_papers
from newsletter.models import DigestPaper
from papers.models import Moderation, Paper
from papers.ranking import rank_trending, trending_score

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
DAY = date(2026, 11, 28)


def paper(title: str, days_old: int = 0, **fields) -> Paper:
    return Paper(canonical_id=title, title=title, listed=DAY - timedelta(days=days_old), **fields)


def test_a_strong_paper_from_yesterday_beats_a_weak_one_from_today():
    strong, weak = paper("strong", 1, upvotes=120), paper("weak", 0, upvotes=10)
    assert trending_score(strong, NOW) > trending_score(weak, NOW)


def test_an_old_paper_fades():
    assert trending_score(paper("a", 7, upvotes=500), NOW) < trending_score(paper("b", 0, upvotes=20), NOW)


def test_age_counts_from_the_listing_day_not_from_when_the_paper_reached_us():
    """A catch-up import today of yesterday's listing ranks as yesterday's digest would have ranked it."""
    late = Paper(canonical_id="late", title="late", listed=DAY - timedelta(days=1), first_seen=NOW, upvotes=40)
    fresh = paper("fresh", 0, upvotes=25)
    assert trending_score(late, NOW) < trending_score(fresh, NOW)
    # Only the ratio between papers matters, and it is the same whatever moment the ages are measured at.
    later = NOW + timedelta(days=400)
    ratio_now = trending_score(late, NOW) / trending_score(fresh, NOW)
    assert ratio_now == pytest.approx(trending_score(late, later) / trending_score(fresh, later))


def test_comments_and_stars_count_and_nobody_voting_still_ranks_by_freshness():
    base = trending_score(paper("a", upvotes=10), NOW)
    assert trending_score(paper("b", upvotes=10, num_comments=5), NOW) > base
    assert trending_score(paper("c", upvotes=10, github_stars=1000), NOW) > base
    assert trending_score(paper("new"), NOW) > trending_score(paper("older", 1), NOW) > 0


def test_pinned_leads_rejected_never_approved_and_featured_boosted():
    papers = [
        paper("top", upvotes=2000),
        paper("pinned", 10, pinned=True),
        paper("rejected", upvotes=900, moderation=Moderation.REJECTED),
        paper("approved", upvotes=100, moderation=Moderation.APPROVED),
        paper("featured", upvotes=100, featured=True),
        paper("plain", upvotes=130),
    ]
    for n, p in enumerate(papers):
        p.pk = n + 1
    ranked = [p.title for p in rank_trending(papers, 5, now=NOW)]
    assert ranked[0] == "pinned" and ranked[1] == "top"
    assert "rejected" not in ranked
    assert ranked.index("approved") < ranked.index("plain") and ranked.index("featured") < ranked.index("plain")


@pytest.mark.django_db
def test_a_pinned_paper_leads_every_digest_even_when_old():
    with time_machine.travel(NOW - timedelta(days=20), tick=False):
        old = Paper.objects.create(canonical_id="old", title="An old paper the editors love", pinned=True)
    with time_machine.travel(NOW, tick=False):
        Paper.objects.create(canonical_id="hot", title="Today's hot paper", upvotes=400)
        Paper.objects.create(canonical_id="bad", title="Rejected", upvotes=900, moderation=Moderation.REJECTED)
        digest = build_digest(DAY)
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        Paper.objects.create(canonical_id="next", title="Tomorrow's paper", upvotes=5)
        tomorrow = build_digest(DAY + timedelta(days=1))
    sections = [
        list(DigestPaper.objects.filter(digest=d).values_list("paper__title", flat=True)) for d in (digest, tomorrow)
    ]
    assert sections[0] == [old.title, "Today's hot paper"]
    # The next day: the pinned paper still leads; yesterday's trending paper is not news again.
    assert sections[1] == [old.title, "Tomorrow's paper"]


@pytest.mark.django_db
def test_review_mode_offers_only_approved_or_pinned_papers(settings):
    settings.MODERATION_MODE = "review"
    with time_machine.travel(NOW, tick=False):
        Paper.objects.create(canonical_id="a", title="Approved", moderation=Moderation.APPROVED)
        Paper.objects.create(canonical_id="p", title="Pending")
        Paper.objects.create(canonical_id="pin", title="Pinned", pinned=True)
        assert sorted(p.title for p in candidate_papers(DAY)) == ["Approved", "Pinned"]
        settings.MODERATION_MODE = "auto"
        assert sorted(p.title for p in candidate_papers(DAY)) == ["Approved", "Pending", "Pinned"]


@pytest.mark.django_db
def test_candidates_kept_between_chunks_follow_bulk_moderation():
    """A worker keeps the day's candidates between chunks; an editor's bulk action (a queryset update, which
    leaves updated_at alone) must still reach the next chunk."""
    with time_machine.travel(NOW, tick=False):
        first = Paper.objects.create(canonical_id="a", title="First", upvotes=3)
        second = Paper.objects.create(canonical_id="b", title="Second", upvotes=2)
        assert {p.title: p.featured for p in candidate_papers(DAY)} == {"First": False, "Second": False}
        Paper.objects.filter(pk=first.pk).update(featured=True)
        assert {p.title: p.featured for p in candidate_papers(DAY)} == {"First": True, "Second": False}
        Paper.objects.filter(pk=second.pk).update(moderation=Moderation.REJECTED)
        assert [p.title for p in candidate_papers(DAY)] == ["First"]
        Paper.objects.filter(pk=second.pk).update(moderation=Moderation.APPROVED, pinned=True)
        assert {p.title: p.pinned for p in candidate_papers(DAY)} == {"First": False, "Second": True}


@pytest.mark.django_db
def test_build_preview_and_review_deadline_choose_the_same_section(settings):
    """One way to choose the shared section: yesterday's featured papers are not news again, a pinned paper
    leads, whether the digest is built, re-ranked for the editor's preview, or sent trending-only at the
    review deadline."""
    from newsletter.backoffice.actions import apply_review_deadline, refresh_draft
    from newsletter.digests.build import choose_trending

    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        Paper.objects.create(canonical_id="y", title="Yesterday's hit", upvotes=900)
        build_digest(DAY - timedelta(days=1))
    with time_machine.travel(NOW, tick=False):
        Paper.objects.create(
            canonical_id="pin", title="Pinned by the editors", pinned=True, listed=DAY - timedelta(days=9)
        )
        Paper.objects.create(canonical_id="t", title="Today's paper", upvotes=5)
        built = [p.title for p in choose_trending(DAY)]
        assert built == ["Pinned by the editors", "Today's paper"]
        digest = build_digest(DAY)
        assert trending_titles(digest) == built
        assert [p.title for p in refresh_draft(digest)] == built
        settings.MODERATION_MODE, settings.REVIEW_MISSED_POLICY = "review", "trending_only"
    with time_machine.travel(NOW.replace(hour=23), tick=False):
        assert apply_review_deadline(DAY) == "trending-only"
    assert trending_titles(digest) == built


def trending_titles(digest) -> list[str]:
    return list(DigestPaper.objects.filter(digest=digest).order_by("position").values_list("paper__title", flat=True))
