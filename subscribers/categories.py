"""The arXiv categories a reader can follow from the sign-up and preferences forms (the ones the daily
fetch can cover; free-text interests reach everything else)."""

ARXIV_CATEGORIES: list[tuple[str, str]] = [
    ("cs.AI", "Artificial intelligence"),
    ("cs.CL", "Computation and language (NLP)"),
    ("cs.CV", "Computer vision"),
    ("cs.LG", "Machine learning"),
    ("stat.ML", "Machine learning (statistics)"),
    ("cs.RO", "Robotics"),
    ("cs.IR", "Information retrieval"),
    ("cs.NE", "Neural and evolutionary computing"),
    ("cs.CR", "Cryptography and security"),
    ("cs.HC", "Human-computer interaction"),
    ("cs.SD", "Sound"),
    ("eess.AS", "Audio and speech processing"),
    ("eess.IV", "Image and video processing"),
    ("cs.MA", "Multiagent systems"),
    ("cs.SE", "Software engineering"),
    ("q-bio.NC", "Neurons and cognition"),
]
