from django.core.management.base import BaseCommand

from newsletter.backoffice.roles import EDITOR_GROUP, setup_roles


class Command(BaseCommand):
    help = f"Create or reset the {EDITOR_GROUP!r} group: moderates papers and digests, no settings/schedules/users."

    def handle(self, *args, **options) -> None:
        group = setup_roles()
        self.stdout.write(f"group={group.name} permissions={group.permissions.count()}")
