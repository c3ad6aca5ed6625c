"""A digest's life in one table: its states, the actions allowed in each, who may take them, where each leads.

The code changes a digest's status only through `move`, one guarded UPDATE per action (two editors clicking at
once, or an editor and a worker, cannot both win); the admin shows the buttons `editor_actions` names.
README's "Delivery" section prints the same table (`markdown()`, kept true by a test).
"""

from dataclasses import dataclass, field

from django.db.models import Case, Value, When

from newsletter.models import Digest

Status = Digest.Status
# Before a digest exists: only "build" starts from here.
NEW = "new"
EDITOR = "editor"
SYSTEM = "system"


class ActionRefused(Exception):
    """The digest is not in a state that allows this action; the message says why, for the editor."""


@dataclass(frozen=True)
class Action:
    name: str
    by: tuple[str, ...]  # who may take it: editors (the admin, `send_digest`) and/or the system (tasks, workers)
    steps: dict[str, tuple[str, ...]]  # state → where the action leads from it; several: `when` says which
    makes: str  # for a refusal: "cannot make it <makes>"
    when: str = ""  # what decides between several outcomes
    label: str = field(default="", compare=False)  # the admin's button


def _from(states: tuple[str, ...], to: str) -> dict[str, tuple[str, ...]]:
    return {state: (to,) for state in states}


UNDER_WAY = (Status.APPROVED, Status.SENDING, Status.PAUSED)
ACTIONS: tuple[Action, ...] = (
    Action("build", (SYSTEM,), {NEW: (Status.DRAFT, Status.SKIPPED)}, "draft", "skipped when no paper is new"),
    Action("rebuild", (SYSTEM,), {Status.SKIPPED: (Status.DRAFT,)}, "draft", "a skipped day's papers arrived"),
    Action(
        "refresh",
        (EDITOR,),
        {Status.DRAFT: (Status.DRAFT, Status.SKIPPED), Status.SKIPPED: (Status.DRAFT, Status.SKIPPED)},
        "draft",
        "re-ranked; skipped while no paper qualifies",
        "Re-rank the draft",
    ),
    Action(
        "skip", (SYSTEM,), {Status.DRAFT: (Status.SKIPPED,)}, "skipped", "review mode, not approved by the deadline"
    ),
    Action(
        "approve",
        (EDITOR, SYSTEM),
        {Status.DRAFT: (Status.APPROVED,)},
        "approved",
        "by the system at the review deadline with `trending_only`",
        "Approve and schedule",
    ),
    Action(
        "start",
        (SYSTEM,),
        _from((Status.DRAFT, Status.APPROVED, Status.SENDING, Status.SENT), Status.SENDING),
        "sending",
        "readers queued; a sent digest starts again for readers due later and catch-up sends",
    ),
    Action(
        "pause",
        (EDITOR,),
        _from((Status.APPROVED, Status.SENDING), Status.PAUSED),
        "paused",
        "workers stop claiming; what is in flight finishes",
        "Pause",
    ),
    Action(
        "self_pause",
        (SYSTEM,),
        _from((Status.SENDING,), Status.PAUSED),
        "paused",
        "more than DELIVERY_PAUSE_ERROR_RATE of the outcomes failed, or DELIVERY_PAUSE_COMPLAINT_RATE of the "
        "delivered complained (the reason is kept for the admin)",
    ),
    Action(
        "resume",
        (EDITOR,),
        {Status.PAUSED: (Status.APPROVED, Status.SENDING)},
        "sending",
        "approved again if no message had gone out, else sending",
        "Resume",
    ),
    Action(
        "finish",
        (SYSTEM,),
        _from((Status.SENDING,), Status.SENT),
        "sent",
        "no row queued (waiting for a retry included) or being sent",
    ),
    Action(
        "retry_failed",
        (EDITOR,),
        {Status.SENT: (Status.SENDING,), Status.SENDING: (Status.SENDING,), Status.PAUSED: (Status.PAUSED,)},
        "sending",
        "failed rows queued again, not suppressed readers'; paused stays paused",
        "Retry failed deliveries",
    ),
    Action(
        "cancel",
        (EDITOR,),
        _from((Status.DRAFT, *UNDER_WAY), Status.CANCELLED),
        "cancelled",
        "queued rows skipped, for good",
        "Cancel this digest",
    ),
    Action("send_test", (EDITOR,), {state: (state,) for state in Status.values}, "tested", label="Send a test to me"),
)
TABLE: dict[str, Action] = {action.name: action for action in ACTIONS}


def allowed(status: str, action: str) -> bool:
    return status in TABLE[action].steps


def editor_actions(status: str) -> list[str]:
    """The actions an editor may take on a digest in this state, in the table's order (the admin's buttons)."""
    return [a.name for a in ACTIONS if EDITOR in a.by and status in a.steps]


def refusal(digest: Digest, action: str) -> ActionRefused:
    return ActionRefused(f"{digest} is {digest.get_status_display().lower()}: cannot make it {TABLE[action].makes}.")


def _update(digest_id: int, action: str, by: str, to: str | None, fields: dict) -> int:
    spec = TABLE[action]
    if by not in spec.by:
        raise ActionRefused(f"{action} is not for the {by}")
    outcomes = {state: targets[0] for state, targets in spec.steps.items() if state != NEW}
    if to is not None:
        outcomes = {state: to for state, targets in spec.steps.items() if to in targets}
    status = Case(*(When(status=state, then=Value(target)) for state, target in outcomes.items()))
    return Digest.objects.filter(pk=digest_id, status__in=list(outcomes)).update(status=status, **fields)


def move(digest_id: int, action: str, by: str, to: str | None = None, **fields: object) -> Digest:
    """Take `action` on the digest: from any state that allows it, to the outcome the table gives (`to` chooses
    where it gives several), with `fields` written in the same UPDATE. Refused (ActionRefused) in any other
    state, or when `by` may not take it. Returns the digest as it is now."""
    updated = _update(digest_id, action, by, to, fields)
    digest = Digest.objects.get(pk=digest_id)
    if not updated:
        raise refusal(digest, action)
    return digest


def attempt(digest_id: int, action: str, to: str | None = None, **fields: object) -> bool:
    """`move` for the system's own transitions, which are no error where the state does not allow them (a worker
    finishing a send that an editor just paused): whether it moved. One statement."""
    return bool(_update(digest_id, action, SYSTEM, to, fields))


def check(digest: Digest, action: str) -> None:
    """Refuse an action where the table does not allow it, before any work (a test send, which changes no
    state, or an action whose own checks come first)."""
    if not allowed(digest.status, action):
        raise refusal(digest, action)


def markdown() -> str:
    """The table as README prints it."""
    lines = ["| action | by | from → to | when |", "|---|---|---|---|"]
    for action in ACTIONS:
        steps = "; ".join(f"{state} → {' or '.join(targets)}" for state, targets in action.steps.items())
        if action.name == "send_test":
            steps = "any state, unchanged"
        lines.append(f"| `{action.name}` | {', '.join(action.by)} | {steps} | {action.when} |")
    return "\n".join(lines)
