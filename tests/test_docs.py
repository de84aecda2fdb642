"""The documentation works: marked snippets run, and every relative link resolves.

A fenced block preceded by the line ``<!-- docs-check: run -->`` is run: ``bash`` blocks line by line
(each command in a shell, ``faultzoo`` from this environment), ``python`` blocks as one script, both
in a temporary folder. Links to files in the repository must name existing files, and a ``#anchor``
must match a heading of the target.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", *(REPO / "docs").glob("*.md")])
MARK = "<!-- docs-check: run -->"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def marked_blocks() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for k, part in enumerate(re.split(rf"^{re.escape(MARK)}$", text, flags=re.M)[1:]):
            match = FENCE.match(part.lstrip("\n"))
            assert match, f"{doc.name}: '{MARK}' #{k + 1} is not followed by a fenced code block"
            found.append((f"{doc.relative_to(REPO)}#{k + 1}", match.group(1), match.group(2)))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in doc.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def test_docs_exist_and_snippets_are_marked():
    assert (REPO / "docs").is_dir()
    assert len(marked_blocks()) >= 3, "the docs should mark runnable examples"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(REPO)))
def test_relative_links_resolve(doc: Path):
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{doc.name}: broken links: {broken}"


@pytest.mark.parametrize(("where", "lang", "code"), marked_blocks(), ids=lambda v: v if "#" in str(v) else "")
def test_marked_snippet_runs(where: str, lang: str, code: str, tmp_path: Path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(REPO / "src")}
    if lang == "python":
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{where}: python snippet failed:\n{done.stderr[-3000:]}"
        return
    assert lang in ("bash", "sh"), f"{where}: cannot run a {lang!r} block"
    for line in code.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{where}: `{line}` failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}"
