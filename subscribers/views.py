from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from newsletter.models import Digest


def landing(request: HttpRequest) -> HttpResponse:
    latest = Digest.objects.filter(status__in=[Digest.Status.SENT, Digest.Status.SENDING]).first()
    papers = list(latest.papers.order_by("digestpaper__position")) if latest else []
    return render(request, "site/landing.html", {"latest": latest, "papers": papers})
