"""Numbers for the admin dashboard, and the charts drawn as inline SVG on the server (no scripts, no CDN)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from newsletter.models import Delivery
from newsletter.sending import sweeper
from papers.models import FetchRun
from subscribers.models import Subscriber

DASHBOARD_DAYS = 30
# Gmail and Yahoo's bulk-sender rules: keep spam complaints under 0.1%, never reach 0.3%. We hold bounces to the
# same lines: a list bouncing that often has stale addresses and providers start deferring it.
RATE_WARNING = 0.001
RATE_LIMIT = 0.003
# Gmail's Postmaster Tools judge a sender's complaint rate over the last week.
RATE_WINDOW_DAYS = 7
DIGESTS_SHOWN = 10  # the latest sends, each with its own rates
FETCH_RUNS_PER_SOURCE = 3
SOURCES_SHOWN = 12

CHART_WIDTH, CHART_HEIGHT = 680, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 28, 28
STATUS_COLORS = {"active": "#2e7d32", "pending": "#f9a825", "unsubscribed": "#757575", "suppressed": "#c62828"}


@dataclass
class Series:
    name: str
    color: str
    values: list[float]


def day_range(today: date, days: int = DASHBOARD_DAYS) -> list[date]:
    return [today - timedelta(days=days - 1 - i) for i in range(days)]


def _per_day(queryset, field: str, days: list[date]) -> dict[date, int]:
    rows = (
        queryset.filter(**{f"{field}__date__gte": days[0], f"{field}__date__lte": days[-1]})
        .annotate(day=TruncDate(field))
        .values("day")
        .annotate(n=Count("pk"))
    )
    return {row["day"]: row["n"] for row in rows}


def subscribers_over_time(days: list[date]) -> list[Series]:
    """Subscribers signed up by each day, split by their status now."""
    series = []
    for status in Subscriber.Status.values:
        people = Subscriber.objects.filter(status=status)
        before = people.filter(created_at__date__lt=days[0]).count()
        daily = _per_day(people, "created_at", days)
        running, values = before, []
        for day in days:
            running += daily.get(day, 0)
            values.append(running)
        series.append(Series(status, STATUS_COLORS[status], values))
    return series


def sends_per_day(days: list[date]) -> Series:
    daily = _per_day(Delivery.objects.exclude(sent_at=None), "sent_at", days)
    return Series("sent", "#1565c0", [daily.get(day, 0) for day in days])


def rates_per_day(days: list[date]) -> tuple[Series, Series]:
    sent = Delivery.objects.exclude(sent_at=None)
    totals = _per_day(sent, "sent_at", days)
    bounced = _per_day(sent.filter(status=Delivery.Status.BOUNCED), "sent_at", days)
    complained = _per_day(sent.filter(status=Delivery.Status.COMPLAINED), "sent_at", days)

    def rate(counts: dict[date, int], day: date) -> float:
        return counts.get(day, 0) / totals[day] if totals.get(day) else 0.0

    return (
        Series("bounce rate", "#ef6c00", [rate(bounced, d) for d in days]),
        Series("complaint rate", "#6a1b9a", [rate(complained, d) for d in days]),
    )


def rate_figure(count: int, total: int) -> dict:
    """A rate as the dashboard shows it, with its level against the 0.1% and 0.3% lines."""
    value = count / total if total else 0.0
    level = "over" if value >= RATE_LIMIT else "warn" if value >= RATE_WARNING else "ok"
    return {"count": count, "rate": value, "percent": f"{100 * value:.2f}%", "level": level}


OUTCOMES = {
    "total": Count("pk"),
    "bounced": Count("pk", filter=Q(status=Delivery.Status.BOUNCED)),
    "complained": Count("pk", filter=Q(status=Delivery.Status.COMPLAINED)),
}


def overall_rates(since: datetime) -> dict:
    counts = Delivery.objects.filter(sent_at__gte=since).aggregate(**OUTCOMES)
    total = counts["total"]
    return {"total": total} | {name: rate_figure(counts[name], total) for name in ("bounced", "complained")}


def digest_rates(limit: int = DIGESTS_SHOWN) -> list[dict]:
    """The latest digests' bounce and complaint rates among the messages each delivered."""
    rows = (
        Delivery.objects.exclude(sent_at=None)
        .values("digest_id", "digest__date", "digest__status", "digest__pause_reason")
        .annotate(**OUTCOMES)
        .order_by("-digest__date")[:limit]
    )
    return [
        {"date": row["digest__date"], "status": row["digest__status"], "pause_reason": row["digest__pause_reason"],
         "total": row["total"], "bounced": rate_figure(row["bounced"], row["total"]),
         "complained": rate_figure(row["complained"], row["total"])}
        for row in rows
    ]  # fmt: skip


def latest_fetch_runs() -> list[dict]:
    """Per source, its last few runs, newest first; sources ordered by their latest run."""
    sources = FetchRun.objects.order_by().values_list("source", flat=True).distinct()
    by_source = []
    for source in sorted(sources)[:SOURCES_SHOWN]:
        runs = list(FetchRun.objects.filter(source=source).order_by("-started_at")[:FETCH_RUNS_PER_SOURCE])
        by_source.append({"source": source, "runs": runs})
    return sorted(by_source, key=lambda s: s["runs"][0].started_at, reverse=True)


def chart(
    days: list[date],
    series: list[Series],
    limits: tuple[tuple[str, float], ...] = (),
    bars: bool = False,
    percent: bool = False,
    title: str = "",
) -> SafeString:
    """A line (or bar) chart over days as an <svg> element, with dashed horizontal lines for the limits."""
    width, height = CHART_WIDTH - PAD_LEFT - PAD_RIGHT, CHART_HEIGHT - PAD_TOP - PAD_BOTTOM
    top = max([v for s in series for v in s.values] + [value for _, value in limits] + [0])
    top = top * 1.15 if top else 1.0
    step = width / max(1, len(days) - 1 if not bars else len(days))

    def x(i: int) -> float:
        return PAD_LEFT + (i + 0.5 if bars else i) * step

    def y(value: float) -> float:
        return PAD_TOP + height - height * value / top

    def label(value: float) -> str:
        return f"{100 * value:.2f}%" if percent else f"{value:,.0f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
        f'class="chart" aria-label="{escape(title)}">',
        f'<rect x="{PAD_LEFT}" y="{PAD_TOP}" width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>',
    ]
    for value in (0, top / 2, top):
        parts.append(
            f'<text x="{PAD_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" fill="#555">'
            f"{escape(label(value))}</text>"
        )
    for i in sorted({0, len(days) // 2, len(days) - 1}):
        anchor = "start" if i == 0 else "end" if i == len(days) - 1 else "middle"
        parts.append(
            f'<text x="{x(i):.1f}" y="{CHART_HEIGHT - 8}" text-anchor="{anchor}" font-size="11" fill="#555">'
            f"{days[i]:%b %d}</text>"
        )
    for name, value in limits:
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{PAD_LEFT + width}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="#c62828" stroke-dasharray="5 4"/>'
            f'<text x="{PAD_LEFT + width - 4}" y="{y(value) - 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#c62828">{escape(name)}</text>'
        )
    # Flat series first, so a line of zeros never hides one with data.
    for s in sorted(series, key=lambda s: max(s.values, default=0)):
        if bars:
            bar_width = max(1.0, step * 0.7)
            for i, value in enumerate(s.values):
                parts.append(
                    f'<rect x="{x(i) - bar_width / 2:.1f}" y="{y(value):.1f}" width="{bar_width:.1f}" '
                    f'height="{PAD_TOP + height - y(value):.1f}" fill="{s.color}"><title>{days[i]:%b %d}: '
                    f"{escape(label(value))}</title></rect>"
                )
        else:
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
            parts.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="2" points="{points}"/>')
    for n, s in enumerate(series):
        parts.append(
            f'<rect x="{PAD_LEFT + 8 + n * 130}" y="8" width="10" height="10" fill="{s.color}"/>'
            f'<text x="{PAD_LEFT + 22 + n * 130}" y="17" font-size="12" fill="#333">{escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above passed through escape(); numbers are ours


def dashboard_context(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    days = day_range(now.date())
    bounce, complaint = rates_per_day(days)
    limits = (("0.1%", RATE_WARNING), ("0.3% limit", RATE_LIMIT))
    return {
        "subscribers_chart": chart(days, subscribers_over_time(days), title="Subscribers by status"),
        "subscriber_counts": dict(Subscriber.objects.values_list("status").annotate(n=Count("pk")).order_by()),
        "sends_chart": chart(days, [sends_per_day(days)], bars=True, title="Sends per day"),
        "rates_chart": chart(days, [bounce, complaint], limits=limits, percent=True, title="Bounce and complaint"),
        "rates": overall_rates(now - timedelta(days=DASHBOARD_DAYS)),
        "week_rates": overall_rates(now - timedelta(days=RATE_WINDOW_DAYS)),
        "week_days": RATE_WINDOW_DAYS,
        "digest_rates": digest_rates(),
        "fetch_runs": latest_fetch_runs(),
        "stuck": sweeper.stuck_count(now),
        "sending": Delivery.objects.filter(status=Delivery.Status.SENDING).count(),
        "days": DASHBOARD_DAYS,
    }
