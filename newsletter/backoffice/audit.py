"""The audit trail: one AuditEntry per editorial action, whoever or whatever took it."""

from django.db import models

from newsletter.models import AuditEntry

SYSTEM_ACTOR = "system"  # the scheduler, acting on a setting rather than a person


def record(user, action: str, targets: list[models.Model] | models.Model, detail: str = "") -> list[AuditEntry]:
    """One entry per target. `user` is the acting user, or None for the scheduler."""
    if isinstance(targets, models.Model):
        targets = [targets]
    actor = user.get_username() if user is not None else SYSTEM_ACTOR
    entries = [
        AuditEntry(
            user=user,
            actor=actor,
            action=action,
            target_type=target._meta.label_lower,  # "papers.paper": enough to link back to it
            target_id=target.pk,
            target_repr=str(target)[:300],
            detail=detail,
        )
        for target in targets
    ]
    return AuditEntry.objects.bulk_create(entries)
