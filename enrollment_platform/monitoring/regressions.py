"""When a duration regresses against its history: more than `factor` times the median of its last values."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median


@dataclass(frozen=True)
class RegressionPolicy:
    """How a duration is judged against its history."""

    factor: float = 2.0  # slower than factor x the median of the history regresses
    window: int = 10  # the history is the last `window` values
    min_history: int = 3  # with fewer past values there is no judgement yet
    min_increase_ms: float = 20.0  # and slower by at least this much: timer noise on tiny tables is not a regression


@dataclass(frozen=True)
class Regression:
    """A load or statement that took `duration_ms` against a median of `median_ms` over `history` past values."""

    kind: str
    name: str
    duration_ms: float
    median_ms: float
    history: int

    @property
    def ratio(self) -> float:
        return self.duration_ms / self.median_ms if self.median_ms else float("inf")

    def describe(self) -> str:
        return (
            f"{self.kind} {self.name} took {self.duration_ms:.1f} ms, {self.ratio:.1f}x the median "
            f"{self.median_ms:.1f} ms of its last {self.history}"
        )

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "duration_ms": round(self.duration_ms, 3),
            "median_ms": round(self.median_ms, 3),
            "ratio": round(self.ratio, 2),
            "history": self.history,
        }


def judge(kind: str, name: str, duration_ms: float, past: list[float], policy: RegressionPolicy) -> Regression | None:
    """A Regression when `duration_ms` is too slow against the last values of `past` (oldest first)."""
    recent = past[-policy.window :]
    if len(recent) < policy.min_history:
        return None
    typical = median(recent)
    if duration_ms > policy.factor * typical and duration_ms - typical >= policy.min_increase_ms:
        return Regression(kind, name, duration_ms, typical, len(recent))
    return None


def find_regressions(
    kind: str, current: dict[str, float], past: dict[str, list[float]], policy: RegressionPolicy
) -> list[Regression]:
    """Every name of `current` whose duration regresses against its own history in `past`."""
    found = (judge(kind, name, duration, past.get(name, []), policy) for name, duration in sorted(current.items()))
    return [regression for regression in found if regression is not None]
