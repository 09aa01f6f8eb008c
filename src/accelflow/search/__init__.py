"""Design-space exploration on a shared study, evaluated on any executor (serial, processes, Dask).

One small layer for every search in accelflow (architecture sweeps, HASS trials, flow-level search):
an Optuna study on an RDB storage (SQLite by default, PostgreSQL for many machines) driven through
ask/tell, evaluations submitted to an :class:`Executor`, results told as they complete. Interrupted
searches resume; several processes may share one study.

>>> from optuna.distributions import IntDistribution
>>> study = create_study("example", storage="sqlite:///:memory:")
>>> space = {"x": IntDistribution(0, 9)}
>>> with make_executor(workers=1) as ex:
...     result = optimize(study, lambda p: p["x"] ** 2, space, n_trials=4, executor=ex, progress=False)
>>> result.completed, len(study.trials)
(4, 4)
"""

from accelflow.search._errors import SearchError
from accelflow.search._executor import (
    DaskExecutor,
    Executor,
    ProcessPoolExecutor,
    SerialExecutor,
    make_executor,
)
from accelflow.search._optimize import Objective, OptimizeResult, Outcome, optimize
from accelflow.search._pareto import pareto_front
from accelflow.search._study import (
    DEFAULT_STORAGE,
    create_study,
    enqueue_grid,
    finished_trials,
    grid_space,
    recover_stale_trials,
    storage_url,
    worker_id,
)

__all__ = [
    "DEFAULT_STORAGE",
    "DaskExecutor",
    "Executor",
    "Objective",
    "OptimizeResult",
    "Outcome",
    "ProcessPoolExecutor",
    "SearchError",
    "SerialExecutor",
    "create_study",
    "enqueue_grid",
    "finished_trials",
    "grid_space",
    "make_executor",
    "optimize",
    "pareto_front",
    "recover_stale_trials",
    "storage_url",
    "worker_id",
]
