"""Which packages the wheel holds (everything else is in pyproject.toml): every package under
``fusionlab/`` found on disk (a new subpackage needs no edit here), ``conf/`` shipped as the package
``fusionlab.conf`` (its YAML files are package data, see pyproject.toml), and the Optuna sweeper plugin
(Hydra loads plugins from the ``hydra_plugins`` namespace only)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["fusionlab", "fusionlab.*"]), "fusionlab.conf",
                "hydra_plugins.fusionlab_optuna"])
