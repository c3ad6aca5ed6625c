from django.urls import path

from subscribers import views

urlpatterns = [
    path("", views.landing, name="landing"),
]
