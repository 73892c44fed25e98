"""An Optuna sweeper that resumes: ``n_trials`` counts the study's finished trials, and a job that
returns NaN (a failed fusionlab job) is a failed trial rather than the end of the search.

Hydra's Optuna sweeper (1.3, with optuna 2.10) runs ``n_trials`` *more* trials each time it is
started on a stored study, numbers their folders from 0 again (overwriting the earlier ones), and
stops the whole search on a NaN objective (``study.tell`` raises). This subclass, used by
``conf/hparams_search/*.yaml``:

- counts the study's finished trials (complete, pruned, failed) and runs only the rest of
  ``n_trials``; trials left ``RUNNING`` by an interrupted search are marked failed and re-run;
- numbers job folders after the trials already stored, so job folder ``k`` is Optuna trial ``k``,
  and moves a seeded sampler on, so the resumed part does not repeat the first suggestions;
- creates the folder of a ``sqlite:///`` storage before Optuna opens it;
- turns a NaN return value into a failed job, which the sweeper records as a failed trial
  (``max_failure_rate`` decides whether the search goes on);
- records a trial that the job's ``OptunaPruning`` callback stopped (``fusionlab.training.pruning``)
  as ``PRUNED`` rather than ``COMPLETE``.

optuna is imported only when a sweep starts: Hydra imports this module at every start-up.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

log = logging.getLogger(__name__)


class ResumableOptunaSweeper(OptunaSweeper):
    """:class:`OptunaSweeper` whose ``n_trials`` is the study's total (see the module docstring)."""

    def sweep(self, arguments: list[str]) -> None:
        impl = self.sweeper
        storage = impl.storage if isinstance(impl.storage, str) else None
        if storage and storage.startswith("sqlite:///"):
            Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if storage and impl.study_name:
            finished, stored = _resume(storage, impl.study_name)
            remaining = max(0, impl.n_trials - finished)
            if stored:
                log.info(f"Study {impl.study_name}: {finished} finished trials stored, {remaining} to run")
            impl.n_trials, impl.job_idx = remaining, stored
            if stored:
                _reseed(impl.sampler, stored)
        impl.launcher = _NaNIsFailure(impl.launcher)
        import optuna

        create_study = optuna.create_study
        optuna.create_study = lambda *a, **k: _tells_pruned(create_study(*a, **k))
        try:
            impl.sweep(arguments)
        except ValueError:  # Hydra asks the study for its best trial, and none completed
            if not storage or not impl.study_name or _completed(storage, impl.study_name):
                raise
            log.warning(f"Study {impl.study_name}: no trial completed (all pruned or failed), so no best "
                        "parameters; see each trial's metrics.json")
        finally:
            optuna.create_study = create_study


def _completed(storage: str, study_name: str) -> int:
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=study_name, storage=storage)
    return sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))


def _tells_pruned(study: Any) -> Any:
    """``study.tell(trial, COMPLETE)`` becomes ``PRUNED`` for a trial its job marked as pruned."""
    from optuna.trial import TrialState

    from fusionlab.training.pruning import PRUNED_ATTR

    tell = study.tell
    storage = getattr(study._storage, "_backend", study._storage)  # past the cache: the job wrote the mark

    def tell_pruned(trial: Any, values: Any = None, state: Any = None) -> Any:
        trial_id = getattr(trial, "_trial_id", None)
        if state == TrialState.COMPLETE and trial_id is not None \
                and PRUNED_ATTR in storage.get_trial(trial_id).user_attrs:
            state, values = TrialState.PRUNED, None
        return tell(trial, values=values, state=state)

    study.tell = tell_pruned
    return study


def _resume(storage: str, study_name: str) -> tuple[int, int]:
    """(finished trials, all trials) of a stored study; running ones left by a crash become failed."""
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study yet
        return 0, 0
    trials = study.get_trials(deepcopy=False)
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    finished = sum(t.state in done for t in trials)
    for t in trials:
        if t.state == TrialState.RUNNING:  # interrupted: fail it (it will be run again as a new trial)
            study._storage.set_trial_state(t._trial_id, TrialState.FAIL)
    return finished, len(trials)


def _reseed(sampler: Any, offset: int) -> None:
    """Move a seeded sampler's random stream on by ``offset`` (deterministically), so a resumed search
    does not suggest the first trials of the fresh search again. Optuna 2.10 samplers keep a numpy
    ``RandomState`` in ``_rng`` (TPE also in its start-up ``_random_sampler``)."""
    import numpy as np

    for s in (sampler, getattr(sampler, "_random_sampler", None)):
        rng = getattr(s, "_rng", None)
        if isinstance(rng, np.random.RandomState):
            rng.seed((int(rng.randint(2**31 - 1)) + offset) % 2**31)


class _NaNIsFailure:
    """Wraps a launcher: a job that returned a non-finite number is reported as a failed job."""

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher

    def __getattr__(self, name: str) -> Any:
        return getattr(self.launcher, name)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        returns = self.launcher.launch(job_overrides, initial_job_idx=initial_job_idx)
        for ret in returns:
            if ret.status == JobStatus.COMPLETED and _non_finite(ret._return_value):
                ret.status = JobStatus.FAILED
                ret._return_value = ValueError(f"objective {ret._return_value}: the job failed (see its metrics.json)")
        return returns


def _non_finite(value: Any) -> bool:
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
