"""Benchmarks: `make bench`. Each module bench/bench_<name>.py exposes `run(size: int) -> list[Row]`."""

from dataclasses import asdict, dataclass


@dataclass
class Row:
    """One measured figure, with the limit it is measured against in the same run."""

    stage: str
    figure: str  # what is measured, e.g. "digests/s"
    value: float
    baseline: str = ""  # the limit, e.g. "bare Jinja2 render"
    baseline_value: float | None = None
    target: str = ""  # the target, e.g. ">= 70% of bare"
    ok: bool | None = None  # whether the target is met, when it can be judged from this run

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value

    def as_dict(self) -> dict:
        return asdict(self) | {"ratio": self.ratio}
