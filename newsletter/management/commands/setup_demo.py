import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from subscribers.models import Subscriber

DEMO_SUBSCRIBERS = [
    ("reader@example.com", "diffusion models, reinforcement learning, speech synthesis"),
    ("trending-only@example.com", ""),
]
ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Create demo subscribers and an admin user when there are none (used by `make run`)."

    def handle(self, *args, **options) -> None:
        call_command("setup_roles", stdout=self.stdout)
        if not Subscriber.objects.exists():
            for email, interests in DEMO_SUBSCRIBERS:
                Subscriber.objects.create(
                    email=email, interests=interests, status=Subscriber.Status.ACTIVE, confirmed_at=timezone.now()
                )
            self.stdout.write(
                f"Created {len(DEMO_SUBSCRIBERS)} demo subscribers: " + ", ".join(e for e, _ in DEMO_SUBSCRIBERS)
            )
        user_model = get_user_model()
        password_file = settings.VAR_DIR / "admin-password.txt"
        if not user_model.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser(ADMIN_USERNAME, "admin@localhost", password)
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        if password_file.exists():
            self.stdout.write(f"Admin: {settings.SITE_URL}/admin/  user={ADMIN_USERNAME}  password in {password_file}")
