"""The documentation works as printed: every example runs, every statement checked here holds, every link resolves.

Every ```bash and ```python block of README.md and docs/*.md is an example. Each runs, the blocks of a
page in order in one temporary folder: ``faultzoo ...`` commands through the installed entry point,
Python blocks as scripts in a subprocess; offline, only the data sources are swapped for those of the
shared folder. A block that cannot run here says why, on the line before its fence:
``<!-- docs-check: skip (REASON) -->``. How blocks are read, substituted and run:
tests/docs_examples.py. Links to files in the repository must name existing files, and a ``#anchor``
must match a heading of the target.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import REPO, require_shared
from tests.docs_examples import (EXAMPLE_LANGUAGES, FAULT_SAMPLE, FENCE, INPUTS, PAGE_INPUTS, PAGES, SUBSTITUTIONS,
                                 Block, Page, blocks, demo_commands, names, problems, session, substitute)

DOCS = sorted([*PAGES, REPO / "CONTRIBUTING.md"])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.lang in EXAMPLE_LANGUAGES and b.skip is None]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in doc.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


# ------------------------------------------------------------------------------------------------ what runs
def test_every_example_runs_or_says_why_not():
    found = [problem for page in PAGES for problem in problems(page)]
    assert not found, "examples that neither run nor say why not:\n" + "\n".join(found)
    examples = [b for page in PAGES for b in blocks(page) if b.lang in EXAMPLE_LANGUAGES]
    skipped = [b for b in examples if b.skip is not None]
    assert len(examples) - len(skipped) >= 20, "most examples should run"
    assert all(len(b.skip) >= 10 for b in skipped), [b.where for b in skipped if len(b.skip) < 10]


def test_a_block_that_neither_runs_nor_says_why_is_found(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("```bash\nmake demo\n```\n\n<!-- docs-check: skip (needs a GPU) -->\n```bash\nnvidia-smi\n```\n\n"
                    "```\nfaultzoo models\n```\n\n<!-- docs-check: run -->\n```python\nprint(1)\n```\n\n"
                    "```text\noutput\n```\n\n<!-- docs-check: skip (a stray mark) -->\ntext\n", encoding="utf-8")
    found = "\n".join(problems(page))
    assert "page.md:1: `make demo` is not a faultzoo command" in found
    assert "page.md:6" not in found  # skipped, with its reason
    assert "page.md:10: a code block without a language" in found
    assert "page.md:15: unknown mark" in found
    assert "page.md:19" not in found  # text is not code
    assert "page.md:23: '<!-- docs-check: skip (a stray mark) -->' is not right before a code block" in found
    assert len(problems(page)) == 4


def test_a_python_block_continues_the_blocks_that_define_its_names(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("```python\nimport faultzoo\nmodel = 1\n```\n\n```python\nother = 2\n```\n\n"
                    "```python\nprint(faultzoo, model + len([x for x in 'ab']))\n```\n\n"
                    "```python\nprint(missing)\n```\n", encoding="utf-8")
    first, second, third, fourth = blocks(page)
    assert session([first, second], third) == [first, third]
    assert session([], first) == [first]
    with pytest.raises(AssertionError, match="uses \\['missing'\\]"):
        session([first, second, third], fourth)


def test_substitutions_and_inputs_are_in_use():
    code = {page: "\n".join(b.code for b in runnable(page)) for page in PAGES}
    everything = "\n".join(code.values())
    for sub in SUBSTITUTIONS:
        assert re.search(sub.pattern, everything, re.M), f"no example needs the substitution {sub.pattern!r}"
    for name, inputs in PAGE_INPUTS.items():
        for item in inputs:
            assert item in INPUTS, item
            assert names(code[REPO / name], item), f"{name} no longer names {item}"
    values = {"cifar10": "x.npz", "shared": "/s"}
    assert substitute("faultzoo eval cifar10/resnet20 --data cifar10 --download --limit 1000", values) \
        == "faultzoo eval cifar10/resnet20 --data x.npz --limit 1000"
    assert substitute("faultzoo campaign f.py:build --faults a.csv --data cifar10 -o r", values) \
        == "faultzoo campaign f.py:build --faults a.csv --data x.npz --transform cifar10 -o r"
    assert substitute('run_campaign(m, f, data="cifar10", fault_sample=300)', values) \
        == f'run_campaign(m, f, data="x.npz", fault_sample={FAULT_SAMPLE})'


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for part in parts[k:]:
                obj = getattr(obj, part)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(REPO)))
def test_named_python_objects_exist(doc: Path):
    """``faultzoo.x.y`` names in the docs (modules, functions, classes) exist: none is left behind by a move."""
    text = doc.read_text(encoding="utf-8")
    wanted = sorted(set(re.findall(r"(?<![\w.])faultzoo(?:\.[A-Za-z_]\w*)+", text)))
    missing = [name for name in wanted if not _resolves(name)]
    assert not missing, f"{doc.name} names what does not exist: {missing}"


# ------------------------------------------------------------------------------------------------ running them
def _shared() -> Path:
    for part in (("datasets", "cifar10", "test-first1000-exact.npz"), ("datasets", "gtsrb", "GTSRB", "Final_Test"),
                 ("faultlists", "dnn-benchmarks", "published-results"), ("mirror",)):
        require_shared(*part)
    return require_shared()


def _after_cross_framework(page: Page) -> None:
    """The oneDNN statement is what the page's own Keras campaign recorded."""
    numerics = json.loads((page.folder / "rn20-keras" / "provenance.json").read_text())["numerics"]["keras"]
    text = page.page.read_text(encoding="utf-8")
    if numerics["onednn"] and numerics["TF_ENABLE_ONEDNN_OPTS"] is None:
        assert '`"onednn": true`' in text and "by default" in text, "oneDNN is on by default: say so"
    assert "off unless" not in text


AFTER = {"docs/cross-framework.md": _after_cross_framework}
PAGES_THAT_RUN = [page for page in PAGES if runnable(page)]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_THAT_RUN, ids=lambda p: str(p.relative_to(REPO)))
def test_page_examples_run(page: Path, tmp_path: Path):
    shared = _shared()
    code = "\n".join(b.code for b in runnable(page))
    for module, word in (("tensorflow", "keras"), ("distributed", "--dask")):
        if word in code and importlib.util.find_spec(module) is None:
            pytest.skip(f"{page.name} runs {word} examples, which need {module}")
    empty = tmp_path / "no-datasets"  # any un-substituted dataset name fails instead of finding a download
    empty.mkdir()
    run = Page(page, tmp_path / "examples", shared, env={"FAULTZOO_DATA": str(empty)})
    run.run()
    after = AFTER.get(run.name)
    if after:
        after(run)


# ------------------------------------------------------------------------------------------------ statements
def test_readme_names_where_make_demo_writes_its_report(tmp_path: Path):
    from faultzoo.analysis.report import default_output

    commands = demo_commands("demo-out", "data.npz")
    report = next(argv for argv in commands if argv[1] == "report")
    assert "-o" not in report and "--output" not in report, report
    (tmp_path / report[2]).mkdir(parents=True)
    folder = default_output(tmp_path / report[2]).relative_to(tmp_path)
    text = (REPO / "README.md").read_text(encoding="utf-8")
    stated = set(re.findall(r"`(demo-out/[^`]*report\.(?:html|md))`", text))
    assert stated, "the README says where make demo writes its report"
    assert stated <= {f"{folder.as_posix()}/report.html", f"{folder.as_posix()}/report.md"}, stated


def test_cluster_doc_describes_the_local_clusters_http_server():
    pytest.importorskip("distributed")
    from faultzoo.campaign.executors.dask import local_cluster

    with local_cluster(0) as cluster:
        link = urlparse(cluster.dashboard_link)
    assert link.hostname == "127.0.0.1" and link.port
    text = " ".join((REPO / "docs" / "cluster.md").read_text(encoding="utf-8").split())
    assert "no dashboard" not in text
    assert "HTTP server" in text and f"dashboard at: http://127.0.0.1:PORT{link.path}" in text


# ------------------------------------------------------------------------------------------------ links
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


def test_docs_folder_exists():
    assert (REPO / "docs").is_dir() and os.listdir(REPO / "docs")
