"""The reader's pages. Each view is a few lines over subscribers.services; every state change is a POST."""

import functools
import json

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from newsletter.models import Digest
from subscribers import ratelimit, services
from subscribers.forms import PreferencesForm, SignUpForm
from subscribers.models import Subscriber
from subscribers.tasks import send_confirmation_task
from subscribers.tokens import CONFIRM_MAX_AGE_SECONDS, Purpose, make_token, read_token

SAMPLE_PAPERS = 5  # enough of the latest digest to show what one looks like
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"  # RFC 8058's POST body


def _landing(request: HttpRequest, form: SignUpForm, status: int = 200, error: str = "") -> HttpResponse:
    latest = Digest.objects.filter(status__in=[Digest.Status.SENT, Digest.Status.SENDING]).first()
    papers = list(latest.papers.order_by("digestpaper__position")[:SAMPLE_PAPERS]) if latest else []
    context = {"form": form, "latest": latest, "papers": papers, "error": error}
    return render(request, "site/landing.html", context, status=status)


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    return _landing(request, SignUpForm())


def _within_limits(request: HttpRequest, address: str | None) -> bool:
    counters = [("signup-ip", ratelimit.client_ip(request), settings.SUBSCRIBE_RATE_PER_IP)]
    if address is not None:
        counters.append(("signup-address", address.lower(), settings.SUBSCRIBE_RATE_PER_ADDRESS))
    return ratelimit.hit_all(counters, settings.SUBSCRIBE_RATE_WINDOW_SECONDS)


@require_POST
def subscribe(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST)
    valid = form.is_valid()
    if not _within_limits(request, form.cleaned_data.get("email") if valid else None):
        error = "Too many sign-up attempts from here. Please wait an hour and try again."
        return _landing(request, SignUpForm(request.POST), status=429, error=error)
    if not valid:
        return _landing(request, form, status=400)
    if not form.is_bot():
        subscriber_id = services.request_subscription(form.signup())
        # Queued whatever the address's state (the task finds out whether to send), so a known address takes as
        # long as a new one. robust: with the broker down the sign-up is still recorded and answered; a second
        # try re-sends.
        transaction.on_commit(lambda: send_confirmation_task.delay(subscriber_id), robust=True)
    # The same page whatever the address's state, so the form can't be used to learn who subscribes.
    return HttpResponse(_check_inbox_page())


@functools.cache
def _check_inbox_page() -> str:
    # Identical for everyone by design (nothing per request in it), so each process renders it once.
    return render_to_string("site/check_inbox.html")


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    subscriber_id = read_token(token, Purpose.CONFIRM, max_age=CONFIRM_MAX_AGE_SECONDS)
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first() if subscriber_id is not None else None
    if subscriber is None:
        return render(request, "site/link_invalid.html", status=400)
    state = services.consent_state(subscriber)
    current = read_token(token, Purpose.CONFIRM, CONFIRM_MAX_AGE_SECONDS, state=state) is not None
    already = subscriber.status == Subscriber.Status.ACTIVE
    if not current and not already:  # replayed after the state moved on: unsubscribed, signed up again
        return render(request, "site/link_invalid.html", status=400)
    if request.method == "GET":
        # Mail scanners follow links; only the POST (sent by the page's script or its button) confirms.
        return render(request, "site/confirm.html", {"already": already})
    if current and services.confirm(subscriber.pk, state) is services.Confirmation.INVALID:
        return render(request, "site/link_invalid.html", status=400)
    return render(request, "site/confirmed.html", {"preferences_token": make_token(subscriber.pk, Purpose.PREFERENCES)})


def _reader(token: str, purpose: str) -> Subscriber | None:
    subscriber_id = read_token(token, purpose)
    return Subscriber.objects.filter(pk=subscriber_id).first() if subscriber_id is not None else None


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _reader(token, Purpose.PREFERENCES)
    if subscriber is None:
        return render(request, "site/link_invalid.html", {"kind": "preferences"}, status=404)
    form = PreferencesForm(request.POST or None, instance=subscriber)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect(f"{request.path}?saved=1")
    context = {
        "form": form,
        "subscriber": subscriber,
        "token": token,
        "unsubscribe_token": make_token(subscriber.pk, Purpose.UNSUBSCRIBE),
        "saved": "saved" in request.GET,
    }
    return render(request, "site/preferences.html", context, status=400 if form.errors else 200)


@never_cache
@require_GET
def export(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _reader(token, Purpose.PREFERENCES)
    if subscriber is None:
        return render(request, "site/link_invalid.html", {"kind": "preferences"}, status=404)
    body = json.dumps(services.export_data(subscriber), indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="daily-papers-my-data.json"'
    return response


@never_cache
@require_POST
def delete(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _reader(token, Purpose.PREFERENCES)
    if subscriber is not None:
        if request.POST.get("confirm") != "yes":
            return redirect(f"/preferences/{token}/#delete")
        services.delete_for_good(subscriber.pk)
    return render(request, "site/deleted.html")


@never_cache
@csrf_exempt  # RFC 8058: mailbox providers POST without cookies or a CSRF token; the signed token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscriber_id = read_token(token, Purpose.UNSUBSCRIBE)
    if subscriber_id is None:
        return render(request, "site/link_invalid.html", {"kind": "unsubscribe"}, status=404)
    if request.method == "GET":
        context = {"preferences_token": make_token(subscriber_id, Purpose.PREFERENCES)}
        return render(request, "site/unsubscribe.html", context)
    if request.POST.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
        return HttpResponse("Expected List-Unsubscribe=One-Click", status=400, content_type="text/plain")
    services.unsubscribe(subscriber_id)
    return render(request, "site/unsubscribed.html")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its cookie (blocked cookies, a page left open for days): say how to go on."""
    return render(request, "site/csrf_failure.html", status=403)
