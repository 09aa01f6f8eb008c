"""Stand-alone search worker run as a subprocess by the robustness tests (so it can be SIGKILLed).

usage: python _worker.py STORAGE_URL STUDY N_TRIALS WORKERS SLEEP_S [grid]
The study must exist (created by the test before any worker starts); the objective is deterministic.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from optuna.distributions import IntDistribution

from accelflow.search import create_study, make_executor, optimize

SPACE = {"a": IntDistribution(0, 9), "b": IntDistribution(0, 9)}


def value_of(params: dict[str, Any]) -> float:
    return float(params["a"] * 10 + params["b"]) + 0.5


class Slow:
    def __init__(self, sleep_s: float) -> None:
        self.sleep_s = sleep_s

    def __call__(self, params: dict[str, Any]) -> float:
        time.sleep(self.sleep_s)
        return value_of(params)


def main() -> None:
    url, name, n_trials, workers, sleep_s = sys.argv[1:6]
    study = create_study(name, storage=url)
    with make_executor(int(workers)) as ex:
        optimize(study, Slow(float(sleep_s)), SPACE, int(n_trials), ex, progress=False,
                 enqueued_only=sys.argv[6:7] == ["grid"])


if __name__ == "__main__":
    main()
