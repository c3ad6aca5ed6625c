"""What papers/ tells the rest of the product, without knowing who listens (papers/ never imports newsletter/)."""

from django.dispatch import Signal

# New papers were stored for these listing days (`days`: a sorted list of dates). A digest skipped because
# its papers had not arrived yet is rebuilt by the receiver in newsletter/.
papers_listed = Signal()
