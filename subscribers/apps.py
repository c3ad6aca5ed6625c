from django.apps import AppConfig


class SubscribersConfig(AppConfig):
    name = "subscribers"
    verbose_name = "Subscribers"

    def ready(self) -> None:
        from papers.ranking import learned
        from papers.signals import papers_merging
        from subscribers import (
            after_response,  # noqa: F401 - connects its request_started/finished receivers
            feedback,
        )

        # The ranking reads readers' ratings through this, and merged papers keep their ratings: handed in,
        # so papers/ never imports subscribers/.
        learned.use_ratings(feedback.reader_ratings)
        papers_merging.connect(feedback.on_papers_merging, dispatch_uid="subscribers.feedback.on_papers_merging")
