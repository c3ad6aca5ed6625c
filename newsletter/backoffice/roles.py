"""Staff roles. Editors moderate papers and digests; settings, schedules and users stay with superusers."""

from django.contrib.auth.models import Group, Permission

EDITOR_GROUP = "editor"
EDITOR_PERMISSIONS = {
    "papers": ["view_paper", "change_paper", "view_fetchrun"],
    "newsletter": [
        "view_digest",
        "change_digest",
        "view_digestpaper",
        "add_digestpaper",
        "change_digestpaper",
        "delete_digestpaper",
        "view_delivery",
        "view_auditentry",
    ],
    "subscribers": ["view_subscriber", "view_suppression"],
}


def setup_roles() -> Group:
    """Create or reset the editor group to exactly EDITOR_PERMISSIONS. Safe to run on every deploy."""
    group, _ = Group.objects.get_or_create(name=EDITOR_GROUP)
    wanted = [(app, codename) for app, codenames in EDITOR_PERMISSIONS.items() for codename in codenames]
    permissions = Permission.objects.filter(content_type__app_label__in=EDITOR_PERMISSIONS).select_related(
        "content_type"
    )
    chosen = [p for p in permissions if (p.content_type.app_label, p.codename) in set(wanted)]
    missing = set(wanted) - {(p.content_type.app_label, p.codename) for p in chosen}
    if missing:
        raise LookupError(f"permissions not found (run migrate first): {sorted(missing)}")
    group.permissions.set(chosen)
    return group
