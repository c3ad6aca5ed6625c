from django.urls import path, re_path

from newsletter import archive

urlpatterns = [
    path("", archive.digest_list, name="archive"),
    path("feed.xml", archive.DigestFeed(), name="archive-feed"),
    re_path(r"^(?P<day>\d{4}-\d{2}-\d{2})/$", archive.digest_day, name="archive-day"),
]
