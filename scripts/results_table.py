"""Summarise finished runs as a Markdown table: mean ± std of a metric over seeds, per setting.

    python scripts/results_table.py outputs/results/mnist1d_models [more folders] [--metric test/acc]

Kept for the commands quoted in docs/results; it is ``fusionlab-report`` (fusionlab/report.py),
which also writes report.md, report.csv, jobs.csv and report.png into the first folder.
"""

from fusionlab.report import main

if __name__ == "__main__":
    main()
