"""Summarise multirun folders: the same as ``fusionlab-report`` (see fusionlab/report.py).

    python scripts/report.py outputs/train/multiruns/<time> [--metric test/acc] [--out DIR]
"""

from fusionlab.report import main

if __name__ == "__main__":
    main()
