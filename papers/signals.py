"""What papers/ tells the rest of the product, without knowing who listens (papers/ never imports newsletter/).
Each is sent synchronously, inside the transaction of the change it reports, so a receiver's work commits or
rolls back with it."""

from django.dispatch import Signal

# New papers were stored for these listing days (`days`: a sorted list of dates). A digest skipped because
# its papers had not arrived yet is rebuilt by the receiver in newsletter/.
papers_listed = Signal()

# An editor (`user`; None for the system) decided about papers: `action` (approve, reject, pin, unpin, feature,
# unfeature, add, edit, merge), `papers` (a list; for a merge, the paper kept) and `detail`. newsletter/ writes
# the audit trail and re-ranks the open drafts, so the preview shows the decision at once.
papers_decided = Signal()

# Papers are about to be folded into `keep` (`duplicate_ids`, deleted right after): whatever points at them
# outside papers/ (digest sections, the delivery ledger's sent-paper lists) is pointed at `keep` now.
papers_merging = Signal()
