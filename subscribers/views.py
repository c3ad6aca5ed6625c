"""The reader's pages. Each view is a few lines over subscribers.services; every state change is a POST, and
each signed link opens only the views of its own purpose (subscribers/tokens.py)."""

import dataclasses
import functools
import json
from collections.abc import Callable

from celery import Task
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from papers.models import Paper
from subscribers import feedback, follows, ratelimit, seeding, services
from subscribers.after_response import run_after_response
from subscribers.forms import PreferencesForm, SeedForm, SignUpForm
from subscribers.models import Subscriber
from subscribers.tasks import (
    retrain_task,
    seed_fetch_task,
    send_confirmation_task,
    send_privacy_link_task,
    signup_task,
)
from subscribers.tokens import PRIVACY_MAX_AGE_SECONDS, Purpose, make_token, rating_state, read_token

ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"  # RFC 8058's POST body
# Data links a reader may ask for per window: a few tries if one gets lost, not a way to flood their inbox.
PRIVACY_LINKS_PER_WINDOW = 3
PRIVACY_LINK_WINDOW_SECONDS = 3600


def _signup_page(request: HttpRequest, form: SignUpForm, status: int, error: str = "") -> HttpResponse:
    """The front page's form again, with what to fix (the front page itself, with the latest digest's papers,
    is newsletter.archive.landing)."""
    context = {"form": form, "latest": None, "papers": [], "error": error}
    return render(request, "site/landing.html", context, status=status)


def _within_limits(request: HttpRequest, address: str | None) -> bool:
    counters = [("signup-ip", ratelimit.client_ip(request), settings.SUBSCRIBE_RATE_PER_IP)]
    if address is not None:
        counters.append(("signup-address", address.lower(), settings.SUBSCRIBE_RATE_PER_ADDRESS))
    return ratelimit.hit_all(counters, settings.SUBSCRIBE_RATE_WINDOW_SECONDS)


@require_POST
def subscribe(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST, request.FILES)
    valid = form.is_valid()
    if not _within_limits(request, form.cleaned_data.get("email") if valid else None):
        error = "Too many sign-up attempts from here. Please wait an hour and try again."
        return _signup_page(request, SignUpForm(request.POST, request.FILES), status=429, error=error)
    if not valid:
        return _signup_page(request, form, status=400)
    if not form.is_bot():
        # One task, whatever the address's state, queued after the response: the task records the request and
        # finds out whether to mail, so a known address takes as long as a new one, with Redis or in-process.
        # With the broker down the reader still gets this page (the error is logged) and can simply try again.
        _queue(signup_task, dataclasses.asdict(form.signup()), timezone.now().isoformat())
    # The same page whatever the address's state, so the form can't be used to learn who subscribes.
    return HttpResponse(_check_inbox_page())


@functools.cache
def _check_inbox_page() -> str:
    # Identical for everyone by design (nothing per request in it), so each process renders it once.
    return render_to_string("site/check_inbox.html")


def _invalid_link(request: HttpRequest, kind: str, status: int) -> HttpResponse:
    return render(request, "site/link_invalid.html", {"kind": kind}, status=status)


def reader_link(purpose: str, invalid_status: int = 404, must_exist: bool = True) -> Callable:
    """A view opened by a reader's signed link: the token must verify for `purpose` (signature, age, purpose)
    and, with `must_exist`, name a subscriber who is still there; anything else gets the "This link doesn't work"
    page, on every method, before the view (or its method check) runs. The view gets the subscriber (None when
    gone and `must_exist` is off), its id and the token."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def opened(request: HttpRequest, token: str) -> HttpResponse:
            subscriber_id = read_token(token, purpose)
            subscriber = Subscriber.objects.filter(pk=subscriber_id).first() if subscriber_id is not None else None
            if subscriber_id is None or (must_exist and subscriber is None):
                return _invalid_link(request, purpose, invalid_status)
            return view(request, subscriber, subscriber_id, token)

        return never_cache(opened)

    return decorate


def _queue(task: Task, *args: object) -> None:
    """Queue `task` once the transaction has committed and the response is sent (subscribers.after_response)."""
    transaction.on_commit(lambda: run_after_response(lambda: task.delay(*args)))


@reader_link(Purpose.CONFIRM, invalid_status=400)
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    state = services.consent_state(subscriber)
    current = read_token(token, Purpose.CONFIRM, state=state) is not None
    already = subscriber.status == Subscriber.Status.ACTIVE
    if not current and not already:  # replayed after the state moved on: unsubscribed, signed up again
        return _invalid_link(request, Purpose.CONFIRM, 400)
    if request.method == "GET":
        # Mail scanners open links (and run their scripts): the page only shows a button, and the POST it
        # sends is what confirms.
        return render(request, "site/confirm.html", {"already": already})
    if current and services.confirm(subscriber.pk, state) is services.Confirmation.INVALID:
        return _invalid_link(request, Purpose.CONFIRM, 400)
    return render(request, "site/confirmed.html")


@reader_link(Purpose.PREFERENCES)
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    form = PreferencesForm(request.POST or None, instance=subscriber)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect(f"{request.path}?saved=1")
    return _preferences_page(request, subscriber, token, form, status=400 if form.errors else 200)


def _preferences_page(
    request: HttpRequest,
    subscriber: Subscriber,
    token: str,
    form: PreferencesForm,
    status: int = 200,
    error: str = "",
    seed_form: SeedForm | None = None,
    seeded: str = "",
) -> HttpResponse:
    context = {
        "seed_form": seed_form or SeedForm(),
        "seeded": seeded,
        "form": form,
        "subscriber": subscriber,
        "token": token,
        "saved": "saved" in request.GET,
        "link_sent": "link_sent" in request.GET,
        "link_minutes": PRIVACY_MAX_AGE_SECONDS // 60,
        "error": error,
        "ratings": feedback.ratings_of(subscriber),
        "ratings_changed": "ratings" in request.GET,
        "authors": follows.followed(subscriber.interests),
        "authors_changed": "authors" in request.GET,
    }
    return render(request, "site/preferences.html", context, status=status)


@reader_link(Purpose.PREFERENCES)
@require_POST
def preferences_ratings(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    """Remove one rating (`remove`: the paper's id) or all of them (`reset`)."""
    if request.POST.get("reset") == "all":
        feedback.reset(subscriber.pk)
    elif (remove := request.POST.get("remove", "")).isdigit():
        feedback.rate(subscriber.pk, int(remove), None)
        _queue(retrain_task, subscriber.pk)
    return redirect(f"/preferences/{token}/?ratings=1#ratings")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def rate(request: HttpRequest, paper_id: int, token: str) -> HttpResponse:
    """A digest's "More like this" / "Less like this" link: the token is the reader's, for this paper only.
    Opening it (a scanner, a preview pane) only shows the paper and the two buttons; the POST of a button rates,
    and the page it answers with can undo that (back to what it was before)."""
    subscriber_id = read_token(token, Purpose.RATE, state=rating_state(paper_id))
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first() if subscriber_id is not None else None
    paper = Paper.objects.filter(pk=paper_id).first()
    if subscriber is None or paper is None:
        return _invalid_link(request, Purpose.RATE, 404)
    follow_url = f"/follow/{paper.pk}/{make_token(subscriber.pk, Purpose.FOLLOW, rating_state(paper.pk))}/"
    if request.method != "POST" and request.GET.get("v") == "follow":  # a card's "Follow an author"
        return redirect(follow_url)
    before = feedback.current(subscriber.pk, paper.pk)
    context = {"paper": paper, "token": token, "asked": request.GET.get("v", ""), "done": "", "undone": False}
    if request.method == "POST":
        choice = request.POST.get("rating", "")
        if choice == "undo":
            previous = request.POST.get("previous", "")
            feedback.rate(subscriber.pk, paper.pk, feedback.VALUES.get(previous))
            context["undone"] = True
        elif choice in feedback.VALUES:
            feedback.rate(subscriber.pk, paper.pk, feedback.VALUES[choice])
            context |= {"done": choice, "previous": feedback.WORDS.get(before, "none")}
        else:
            return HttpResponse("Expected rating=more, less or undo", status=400, content_type="text/plain")
        before = feedback.current(subscriber.pk, paper.pk)
        _queue(retrain_task, subscriber.pk)
    context["current"] = feedback.WORDS.get(before, "")
    if paper.authors:
        context["follow_url"] = follow_url
    return render(request, "site/rate.html", context)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def follow(request: HttpRequest, paper_id: int, token: str) -> HttpResponse:
    """Follow an author of this paper: the token is the reader's, for this paper's authors only. Opening the link
    only lists the authors with a button each; the POST of a button follows (or, `unfollow`, undoes it)."""
    subscriber_id = read_token(token, Purpose.FOLLOW, state=rating_state(paper_id))
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first() if subscriber_id is not None else None
    paper = Paper.objects.filter(pk=paper_id).first()
    if subscriber is None or paper is None:
        return _invalid_link(request, Purpose.FOLLOW, 404)
    authors = [name for name in paper.authors if isinstance(name, str) and follows.clean_name(name)]
    context = {"paper": paper, "done": "", "author": ""}
    if request.method == "POST":
        action, wanted = request.POST.get("action", ""), follows.clean_name(request.POST.get("author", ""))
        named = [name for name in authors if follows.same_author(name, wanted)]
        if action not in ("follow", "unfollow") or not named:
            return HttpResponse("Expected action=follow or unfollow and an author of the paper", status=400)
        if action == "follow":
            follows.follow(subscriber.pk, named[0])
        else:
            follows.unfollow(subscriber.pk, named[0])
        subscriber.refresh_from_db(fields=["interests"])
        following = follows.follows(subscriber, named[0])
        context |= {
            "done": action,
            "author": follows.clean_name(named[0]),
            "full": action == "follow" and not following,
        }
    context["authors"] = [(name, follows.follows(subscriber, name)) for name in authors]
    return render(request, "site/follow.html", context)


@reader_link(Purpose.PREFERENCES)
@require_POST
def preferences_authors(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    """Stop following one author (`remove`: the name as listed)."""
    follows.unfollow(subscriber.pk, request.POST.get("remove", ""))
    return redirect(f"/preferences/{token}/?authors=1#authors")


@reader_link(Purpose.PREFERENCES)
@require_POST
def preferences_seed(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    """Papers the reader knows, pasted or uploaded: each becomes a "more like this". Those we hold are rated now;
    the rest once the arXiv API has been asked (a task). The page says what was recognised and what was not."""
    form = SeedForm(request.POST, request.FILES)
    if not form.is_valid():
        return _preferences_page(request, subscriber, token, PreferencesForm(instance=subscriber), 400, seed_form=form)
    seeds = form.cleaned_data["seeds"]
    if seeds is None:
        return redirect(f"/preferences/{token}/#seed")
    missing = seeding.rate_known(subscriber.pk, seeds.ids)
    if missing:
        _queue(seed_fetch_task, subscriber.pk, missing)
    _queue(retrain_task, subscriber.pk)
    told = seeds.summary() + (f"; {_looked_up(len(missing))}." if missing else ".")
    return _preferences_page(request, subscriber, token, PreferencesForm(instance=subscriber), seeded=told)


def _looked_up(count: int) -> str:
    return f"{count} {'is' if count == 1 else 'are'} being looked up on arXiv and will be added"


@reader_link(Purpose.PREFERENCES)
@require_POST
def request_privacy_link(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    """Mail the reader a link, good for an hour, that downloads or deletes their data: the preferences link
    (kept in every digest, forwarded with it) does neither itself."""
    counter = ("privacy-link", str(subscriber.pk), PRIVACY_LINKS_PER_WINDOW)
    if not ratelimit.hit_all([counter], PRIVACY_LINK_WINDOW_SECONDS):
        error = "We've sent several links already. Please use the latest one, or wait an hour and ask again."
        return _preferences_page(request, subscriber, token, PreferencesForm(instance=subscriber), 429, error)
    _queue(send_privacy_link_task, subscriber.pk)
    return redirect(f"/preferences/{token}/?link_sent=1#privacy")


@reader_link(Purpose.PRIVACY)
@require_GET
def privacy(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    context = {"subscriber": subscriber, "token": token, "link_minutes": PRIVACY_MAX_AGE_SECONDS // 60}
    return render(request, "site/privacy.html", context)


@reader_link(Purpose.PRIVACY)
@require_GET
def export(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    body = json.dumps(services.export_data(subscriber), indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="daily-papers-my-data.json"'
    return response


@reader_link(Purpose.PRIVACY)
@require_POST
def delete(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    if request.POST.get("confirm") != "yes":
        return redirect(f"/privacy/{token}/#delete")
    services.delete_for_good(subscriber.pk)
    return render(request, "site/deleted.html")


@never_cache
def retired_link(request: HttpRequest, token: str) -> HttpResponse:
    """Data downloads and deletion used to hang off the preferences link; they need a mailed link now."""
    return _invalid_link(request, "retired", 410)


@csrf_exempt  # RFC 8058: mailbox providers POST without cookies or a CSRF token; the signed token is the proof
@reader_link(Purpose.UNSUBSCRIBE, must_exist=False)
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, subscriber: Subscriber | None, subscriber_id: int, token: str) -> HttpResponse:
    """The List-Unsubscribe link. GET shows one button (or, once unsubscribed, one to subscribe again); the
    one-click POST unsubscribes, also when the reader is gone (the provider hears success)."""
    if request.method == "GET":
        return render(request, "site/unsubscribe.html", {"subscriber": subscriber, "token": token})
    if request.POST.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
        return HttpResponse("Expected List-Unsubscribe=One-Click", status=400, content_type="text/plain")
    services.unsubscribe(subscriber_id)
    return render(request, "site/unsubscribed.html", {"token": token})


@reader_link(Purpose.UNSUBSCRIBE)
@require_POST
def resubscribe(request: HttpRequest, subscriber: Subscriber, subscriber_id: int, token: str) -> HttpResponse:
    """Subscribe again from the unsubscribe link: pending until the reader confirms from the email it sends.
    Counted with sign-ups (per address and client): whoever holds the link cannot flood the inbox with
    confirmations by unsubscribing and subscribing again."""
    if not _within_limits(request, subscriber.email):
        error = "Too many requests for this address. Please wait an hour and try again."
        context = {"subscriber": subscriber, "token": token, "error": error}
        return render(request, "site/unsubscribe.html", context, status=429)
    if services.resubscribe(subscriber.pk):
        _queue(send_confirmation_task, subscriber.pk)
    return HttpResponse(_check_inbox_page())


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its cookie (blocked cookies, a page left open for days): say how to go on."""
    return render(request, "site/csrf_failure.html", status=403)
