from django.urls import path

from subscribers import views

urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("preferences/<str:token>/privacy/", views.request_privacy_link, name="request-privacy-link"),
    path("preferences/<str:token>/ratings/", views.preferences_ratings, name="preferences-ratings"),
    path("preferences/<str:token>/seed/", views.preferences_seed, name="preferences-seed"),
    path("preferences/<str:token>/authors/", views.preferences_authors, name="preferences-authors"),
    path("follow/<int:paper_id>/<str:token>/", views.follow, name="follow"),
    path("rate/<int:paper_id>/<str:token>/", views.rate, name="rate"),
    # Where data downloads and deletion were before they needed a mailed link: "this link doesn't work".
    path("preferences/<str:token>/data.json", views.retired_link),
    path("preferences/<str:token>/delete/", views.retired_link),
    path("privacy/<str:token>/", views.privacy, name="privacy"),
    path("privacy/<str:token>/data.json", views.export, name="export"),
    path("privacy/<str:token>/delete/", views.delete, name="delete"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/resubscribe/", views.resubscribe, name="resubscribe"),
]
