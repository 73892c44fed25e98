"""An Optuna sweeper that resumes its study, survives failed trials and records pruned ones.

Used by ``conf/hparams_search/*.yaml`` (``hydra.sweeper._target_``); it takes the same settings as
Hydra's Optuna sweeper (``override /hydra/sweeper: optuna``: sampler, direction, storage,
study_name, n_trials, n_jobs, max_failure_rate, params) and runs Optuna's public ask-and-tell loop:

- ``optuna.create_study(..., load_if_exists=True)`` reopens a stored study; ``n_trials`` is the
  number of *finished* trials (complete, pruned, failed) the study should hold, so a rerun runs only
  the rest. Trials left ``RUNNING`` by an interrupted search are told ``FAIL`` and run again;
- job folder ``k`` is Optuna trial ``k`` (folders continue after the stored trials), which the job's
  ``OptunaPruning`` callback (``fusionlab.training.pruning``) relies on to reopen its trial;
- a seeded sampler is built again with ``seed + <stored trials>``, so the resumed part does not
  repeat the first suggestions (deterministically);
- a job that failed or returned a non-finite objective (a failed fusionlab job returns NaN) is told
  ``FAIL``; ``max_failure_rate`` decides whether the search goes on;
- a job whose trial the pruning callback marked (user attribute ``pruned_at_epoch``, read from a
  freshly loaded study) is told ``PRUNED``;
- the ``sqlite:///`` storage's folder is created first; the best parameters go to
  ``<sweep dir>/optimization_results.yaml`` (a warning when no trial completed).

Only public APIs of Hydra (``Sweeper``, ``Plugins``, the override parser) and Optuna (``create_study``,
``load_study``, ``ask``/``tell``) are used. optuna is imported only when a sweep starts: Hydra imports
this module at every start-up (``--help`` included).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

PRUNED_ATTR = "pruned_at_epoch"  # = fusionlab.training.pruning.PRUNED_ATTR (a test checks they agree)


class ResumableOptunaSweeper(Sweeper):
    """Hydra sweeper: Optuna's ask-and-tell over ``params``; ``n_trials`` is the study's total."""

    def __init__(self, sampler: Any, direction: Any, storage: str | None, study_name: str | None, n_trials: int,
                 n_jobs: int, max_failure_rate: float, search_space: Any = None, custom_search_space: Any = None,
                 params: DictConfig | None = None) -> None:
        if search_space or custom_search_space:
            raise ValueError("hydra.sweeper: set the search space in hydra.sweeper.params (search_space and "
                             "custom_search_space are not supported by ResumableOptunaSweeper)")
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError(f"hydra.sweeper.max_failure_rate: must be in [0, 1], got {max_failure_rate}")
        self.sampler, self.storage, self.study_name = sampler, storage, study_name
        self.directions = [getattr(d, "name", d) for d in (direction if isinstance(direction, Sequence)
                                                            and not isinstance(direction, str) else [direction])]
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, n_jobs, max_failure_rate
        self.params = params
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(config=config, hydra_context=hydra_context,
                                                                task_function=task_function)

    def sweep(self, arguments: list[str]) -> None:
        import optuna
        from optuna.trial import TrialState

        assert self.config is not None and self.launcher is not None
        overrides = [f"{k}={v}" for k, v in (self.params or {}).items()] + list(arguments)
        space, fixed = search_space(overrides)
        if isinstance(self.storage, str) and self.storage.startswith("sqlite:///"):
            Path(self.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(study_name=self.study_name, storage=self.storage, sampler=self.sampler,
                                    directions=self.directions, load_if_exists=True)
        stored = study.get_trials(deepcopy=False)
        for t in stored:
            if t.state == TrialState.RUNNING:  # left by an interrupted search: fail it (a new trial re-runs it)
                study.tell(t.number, state=TrialState.FAIL)
        finished = len(stored)  # every stored trial is finished now
        if stored:
            study = optuna.load_study(study_name=study.study_name, storage=self.storage,
                                      sampler=self._sampler_after(len(stored)))
        to_go = max(0, self.n_trials - finished)
        log.info(f"Study {study.study_name} ({self.storage}): {finished} finished trials stored, {to_go} to run; "
                 f"sampler {type(study.sampler).__name__}, directions {self.directions}")
        job_idx = len(stored)
        while to_go > 0:
            asked = [study.ask(fixed_distributions=space) for _ in range(min(self.n_jobs, to_go))]
            for trial in asked:
                for name, value in fixed.items():
                    trial.set_user_attr(name, value)
            jobs = [tuple(f"{k}={v}" for k, v in {**trial.params, **fixed}.items()) for trial in asked]
            if asked[0].number != job_idx:
                log.warning(f"trial {asked[0].number} runs in job folder {job_idx}: another process uses the study")
            returns = self.launcher.launch(jobs, initial_job_idx=job_idx)
            job_idx += len(returns)
            pruned = self._pruned_trials(study.study_name)
            failures = []
            for trial, ret in zip(asked, returns):
                state, values, problem = outcome(ret, len(self.directions), trial.number in pruned)
                study.tell(trial, values=values, state=state)
                if problem:
                    log.warning(f"Trial {trial.number} failed: {problem}")
                    failures.append(problem)
            if len(failures) / len(returns) > self.max_failure_rate:
                raise RuntimeError(f"{len(failures)} of {len(returns)} trials failed (max_failure_rate="
                                   f"{self.max_failure_rate}): {failures[0]}")
            to_go -= len(returns)
        self._write_results(study)

    def _sampler_after(self, stored: int) -> Any:
        """The configured sampler, with ``seed + stored`` when it is seeded (a resumed search moves on)."""
        from hydra.utils import instantiate

        assert self.config is not None
        cfg = self.config.hydra.sweeper.get("sampler")
        if cfg is None or cfg.get("seed") is None or cfg.get("_partial_", False):
            return self.sampler
        return instantiate(cfg, seed=(int(cfg.seed) + stored) % 2**31)

    def _pruned_trials(self, study_name: str) -> set[int]:
        """Numbers of the trials whose job marked them pruned (read past this process's cache)."""
        if not self.storage:
            return set()
        import optuna

        fresh = optuna.load_study(study_name=study_name, storage=self.storage)
        return {t.number for t in fresh.get_trials(deepcopy=False) if PRUNED_ATTR in t.user_attrs}

    def _write_results(self, study: Any) -> None:
        from optuna.trial import TrialState

        assert self.config is not None
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            log.warning(f"Study {study.study_name}: no trial completed (all pruned or failed), so no best "
                        "parameters; see each trial's metrics.json")
            return
        if len(self.directions) == 1:
            results = {"name": "optuna", "best_params": study.best_trial.params, "best_value": study.best_value}
            log.info(f"Best parameters: {study.best_trial.params}")
            log.info(f"Best value: {study.best_value}")
        else:
            results = {"name": "optuna", "solutions": [{"params": t.params, "values": t.values}
                                                       for t in study.best_trials]}
            log.info(f"Number of Pareto solutions: {len(study.best_trials)}")
        OmegaConf.save(OmegaConf.create(results), Path(self.config.hydra.sweep.dir) / "optimization_results.yaml")


def outcome(ret: JobReturn, n_objectives: int, pruned: bool) -> tuple[Any, list[float] | None, str | None]:
    """(state, values, problem) to tell Optuna for a finished job."""
    from optuna.trial import TrialState

    if ret.status != JobStatus.COMPLETED:
        try:
            ret.return_value  # noqa: B018  (JobReturn raises the job's exception here)
        except Exception as e:
            return TrialState.FAIL, None, f"the job raised {type(e).__name__}: {e}"
        return TrialState.FAIL, None, "the job did not complete"
    if pruned:
        return TrialState.PRUNED, None, None
    value = ret.return_value
    raw = list(value) if n_objectives > 1 and isinstance(value, Sequence) else [value]
    try:
        values = [float(v) for v in raw]
    except (TypeError, ValueError):
        return TrialState.FAIL, None, f"objective {value!r} is not a number"
    if len(values) != n_objectives:
        return TrialState.FAIL, None, f"{len(values)} objectives returned, {n_objectives} expected"
    if not all(math.isfinite(v) for v in values):
        return TrialState.FAIL, None, f"objective {value}: the job failed (see its metrics.json)"
    return TrialState.COMPLETE, values, None


def search_space(overrides: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Optuna distributions for the sweep overrides (``choice``, ``range``, ``interval``, ``tag(log, ...)``)
    and the fixed ``key=value`` ones, in Hydra's override syntax."""
    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        name = override.get_key_element()
        if override.is_sweep_override():
            space[name] = distribution(override)
        else:
            fixed[name] = override.get_value_element_as_str()
    for name in fixed:
        space.pop(name, None)  # a fixed value on the command line replaces the searched one
    return space, fixed


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override (as Hydra's Optuna sweeper reads them)."""
    from optuna import distributions as d

    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        return d.CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        if any(isinstance(x, float) for x in (value.start, value.stop, value.step)):
            return d.DiscreteUniformDistribution(value.start, value.stop, value.step)
        return d.IntUniformDistribution(int(value.start), int(value.stop), step=int(value.step))
    if isinstance(value, IntervalSweep):
        ints = isinstance(value.start, int) and isinstance(value.end, int)
        if "log" in value.tags:
            return (d.IntLogUniformDistribution(int(value.start), int(value.end)) if ints
                    else d.LogUniformDistribution(value.start, value.end))
        return d.IntUniformDistribution(value.start, value.end) if ints else d.UniformDistribution(value.start,
                                                                                                    value.end)
    raise ValueError(f"hydra.sweeper.params: {override.input_line} is not a sweep Optuna can search "
                     "(use choice, range or interval)")
