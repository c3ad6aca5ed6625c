from django.apps import AppConfig


class SubscribersConfig(AppConfig):
    name = "subscribers"
    verbose_name = "Subscribers"

    def ready(self) -> None:
        from subscribers import after_response  # noqa: F401 - connects its request_started/finished receivers
