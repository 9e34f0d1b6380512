"""READMEs read on the repository's web host, where no build fills a marker: each is committed
filled, written from its template here (hand-written Markdown with the site's
``<!-- gen: NAME -->`` markers), and ``tests/test_docs.py`` fails when one has drifted from the
code or from its template.

    python docs/gen/readmes.py            # rewrite them
    python docs/gen/readmes.py --check    # exit 1, naming the stale ones
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import gen_pages

GEN = Path(__file__).resolve().parent
ROOT = GEN.parents[1]
READMES = {"attacks/README.md": "attacks_readme.md"}  # committed file (from the repository root) -> its template in docs/gen/


def render(target: str) -> str:
    """The committed text of ``target``: its template with every marker filled, under a line
    (invisible on the web host) that says where to edit it."""
    template = READMES[target]
    head = f"<!-- Written by `python docs/gen/readmes.py` from docs/gen/{template}: edit the template, then run it. -->\n"
    return head + gen_pages.fill((GEN / template).read_text(encoding="utf-8"), f"docs/gen/{template}")


def stale() -> list[str]:
    """The READMEs whose committed text is not what their template and the code give now."""
    return [t for t in READMES if not (ROOT / t).is_file() or (ROOT / t).read_text(encoding="utf-8") != render(t)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report the stale ones (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        old = stale()
        for target in old:
            print(f"{target} is stale: run python docs/gen/readmes.py")
        return 1 if old else 0
    for target in READMES:
        (ROOT / target).write_text(render(target), encoding="utf-8")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
