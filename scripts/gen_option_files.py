"""Generate the YAML option files of branches, fusions and embeddings from their classes.

    python scripts/gen_option_files.py                      # rewrite every generated file in conf/
    python scripts/gen_option_files.py --check              # exit 1 when a file and its class disagree
    python scripts/gen_option_files.py fusion/my_fusion my_pkg.MyFusion   # write a new option file

A generated file carries the line ``# generated from <class> ...``; files without it (presets such
as ``branch/cnn_then_rnn``) are written by hand. See :mod:`fusionlab.models.option_files`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fusionlab.config.schema import locate
from fusionlab.models.option_files import generated_target, option_file

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("branch", "fusion", "embedding")


def stale(conf: Path = CONF) -> dict[Path, str]:
    """Every generated file whose text differs from its class's option file -> the expected text."""
    out = {}
    for group in GROUPS:
        for path in sorted((conf / group).glob("*.yaml")):
            target = generated_target(path)
            if target is None:
                continue
            expected = option_file(locate(target), group, target)
            if path.read_text() != expected:
                out[path] = expected
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("option", nargs="?", help="group/name of a new option file, e.g. fusion/my_fusion")
    parser.add_argument("target", nargs="?", help="the class, e.g. my_pkg.MyFusion")
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    args = parser.parse_args()
    if args.option:
        group, name = args.option.split("/")
        path = CONF / group / f"{name}.yaml"
        path.write_text(option_file(locate(args.target), group, args.target))
        print(f"wrote {path}")
        return 0
    files = stale()
    for path, text in files.items():
        if args.check:
            print(f"{path.relative_to(CONF.parent)}: differs from its class (run python scripts/gen_option_files.py)")
        else:
            path.write_text(text)
            print(f"rewrote {path.relative_to(CONF.parent)}")
    return 1 if args.check and files else 0


if __name__ == "__main__":
    sys.exit(main())
