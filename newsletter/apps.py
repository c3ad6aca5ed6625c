from django.apps import AppConfig


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = "Newsletter"

    def ready(self) -> None:
        from newsletter import receivers, webhooks  # noqa: F401 - connect the receivers of papers' and providers' events
