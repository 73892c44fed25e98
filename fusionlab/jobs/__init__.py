"""The jobs behind ``train.py`` and ``eval.py``, one concept per module:

* :mod:`~fusionlab.jobs.train` — compose → validate → build → fit → validate/test → ``metrics.json``;
* :mod:`~fusionlab.jobs.evaluate` — test a checkpoint with the config saved inside it;
* :mod:`~fusionlab.jobs.builders` — datamodule, network, LightningModule and Trainer from a config
  (also from a saved config and a data state, without a datamodule);
* :mod:`~fusionlab.jobs.probes` — bad optimizer/scheduler values reported before ``fit``, naming the key;
* :mod:`~fusionlab.jobs.config_rewrites` — ``regularizer.dropout`` and the no-validation protocol;
* :mod:`~fusionlab.jobs.saved_run` — reading a checkpoint as data (weights_only, registry check);
* :mod:`~fusionlab.jobs.environment` — threads, Lightning's chatter, Hydra's choices;
* :mod:`~fusionlab.jobs.results` — atomic ``metrics.json``.
"""
