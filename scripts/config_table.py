"""Print the Markdown table of config groups and options (from each YAML file's first comment line).

    python scripts/config_table.py > /tmp/table.md   # paste into README.md
"""

from __future__ import annotations

from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"


def summary(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("# ").strip()
    return ""


def main() -> None:
    print("| group | option | what it is |")
    print("|---|---|---|")
    for group in sorted(p for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for option in sorted(group.glob("*.yaml")):
            print(f"| `{group.name}` | `{option.stem}` | {summary(option)} |")


if __name__ == "__main__":
    main()
