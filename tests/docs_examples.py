"""The code examples of README.md and docs/*.md, read as a reader reads them and run as printed.

Every fenced block names its language. ``bash`` and ``python`` blocks are examples, and each one either
runs or is marked, on the line before its fence, ``<!-- docs-check: skip (REASON) -->`` with the reason
it cannot run here (a GPU, a SLURM cluster, a download). Any other language (``text``: program output,
formulas, usage lines) is not code. :func:`problems` lists every block that is neither.

How an example runs (:class:`Page`):

* the blocks of one page run in order, in one folder, so an example finds the files that earlier
  examples of its page wrote;
* ``bash``: every command (continued lines joined, comments dropped) is a ``faultzoo ...`` command, run
  through the installed ``faultzoo`` entry point;
* ``python``: saved as a script and run with ``python SCRIPT`` in a subprocess. A block whose first line
  is ``# NAME.py`` is a file of the example and is saved under that name. A block that uses a name it
  never defines continues the page's session: the earlier Python blocks of the page that define its
  missing names (and theirs, in turn) run with it, in page order, in the same script.

Offline, only the data change: :data:`SUBSTITUTIONS` swap, textually, the data sources of this
network-less machine in (and shrink sampled campaigns), and :data:`INPUTS` are the files an example takes
as given (a reader's own ``.npz``, a published results file, the folder ``make demo`` leaves), made for
the pages that :data:`PAGE_INPUTS` names before the first block that names them.
"""

from __future__ import annotations

import ast
import builtins
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
EXAMPLE_LANGUAGES = ("bash", "python")
NOT_CODE = ("text",)
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
MARK = re.compile(r"^<!--\s*docs-check:(.*?)-->\s*$")
SKIP = re.compile(r"^\s*skip \((?P<reason>.*\S.*)\)\s*$")
TIMEOUT = 300  # seconds for one command or script

# The images every example reads instead of a download: the first 32 of the 1,000 exact CIFAR-10 test
# images of the shared folder (a campaign's --limit above 32 takes them all, with a warning).
CIFAR10_IMAGES = 32
# Faults of a sampled campaign (--fault-sample N): enough for a resnet20 pilot to see critical faults
# (`faultzoo plan` refuses to plan the critical rate of a pilot that saw none).
FAULT_SAMPLE = 30


@dataclass(frozen=True)
class Substitution:
    pattern: str
    replacement: str  # may name {cifar10} (the .npz above) and {shared} (the shared folder)
    why: str


SUBSTITUTIONS = (
    Substitution(r"^(faultzoo campaign (?!(?:cifar10|cifar100|gtsrb)/)[^\n]*?)--data cifar10(?: --download)?(?=\s|$)",
                 r"\1--data {cifar10} --transform cifar10",
                 "the same for a model outside the zoo, which learns the images' test transform from the dataset's "
                 "name: --transform names it"),
    Substitution(r"--data cifar10(?: --download)?(?=\s|$)", "--data {cifar10}",
                 "CIFAR-10's test set (a download) -> the first 32 exact test images, as an .npz"),
    Substitution(r'(?<=data=)"cifar10"|(?<=load_selection\()"cifar10"', '"{cifar10}"',
                 "the same in Python (data=, load_selection)"),
    Substitution(r'root="/data"', 'root="{shared}/datasets"',
                 "a data root holding GTSRB -> the shared folder's copy of the real GTSRB test set"),
    Substitution(r"--fault-sample \d+", f"--fault-sample {FAULT_SAMPLE}", "campaigns kept tiny"),
    Substitution(r"\bfault_sample=\d+", f"fault_sample={FAULT_SAMPLE}", "the same in Python"),
)


def substitute(code: str, values: dict[str, str]) -> str:
    for sub in SUBSTITUTIONS:
        code = re.sub(sub.pattern, sub.replacement.format(**values), code, flags=re.M)
    return code


# ------------------------------------------------------------------------------------------------ blocks
def shown(page: Path) -> str:
    """A page's path as messages name it: relative to the repository."""
    return page.relative_to(REPO).as_posix() if page.is_relative_to(REPO) else page.name


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    code: str
    marks: tuple[str, ...] = ()  # docs-check comments right before the fence

    @property
    def where(self) -> str:
        return f"{shown(self.page)}:{self.line}"

    @property
    def skip(self) -> str | None:
        for mark in self.marks:
            match = SKIP.match(mark)
            if match:
                return match["reason"].strip()
        return None

    @property
    def file_name(self) -> str | None:
        """``NAME.py`` for a Python block that is a file of the example (first line ``# NAME.py``)."""
        match = re.match(r"#\s*([\w\-]+\.py)\b", self.code)
        return match[1] if self.lang == "python" and match else None

    def commands(self) -> list[list[str]]:
        """The commands of a bash block, each as its argv."""
        text = self.code.replace("\\\n", " ")
        return [argv for line in text.splitlines() if (argv := shlex.split(line, comments=True))]


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].splitlines()
        marks = []
        while before and MARK.match(before[-1].strip()):
            marks.append(MARK.match(before.pop().strip())[1])
        found.append(Block(page, len(text[:match.start()].splitlines()) + 1, match[1].strip(), match[2],
                           tuple(reversed(marks))))
    return found


def stray_marks(page: Path) -> list[str]:
    """docs-check comments that are not right before a fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    stray = []
    for k, line in enumerate(lines):
        if MARK.match(line.strip()):
            rest = [n for n in lines[k + 1:] if not MARK.match(n.strip())]
            if not rest or not rest[0].startswith("```"):
                stray.append(f"{shown(page)}:{k + 1}: '{line.strip()}' is not right before a code block")
    return stray


def problems(page: Path) -> list[str]:
    """Every block of ``page`` that neither runs nor says why it does not, and every malformed mark."""
    found = stray_marks(page)
    for block in blocks(page):
        say = found.append
        for mark in block.marks:
            if not SKIP.match(mark):
                say(f"{block.where}: unknown mark '<!-- docs-check:{mark}-->'; the only mark is "
                    "'<!-- docs-check: skip (REASON) -->' (every other example runs)")
        if not block.lang:
            say(f"{block.where}: a code block without a language: 'bash' or 'python' (examples) or 'text'")
            continue
        if block.lang not in EXAMPLE_LANGUAGES:
            if block.lang not in NOT_CODE:
                say(f"{block.where}: language {block.lang!r}: examples are 'bash' or 'python', anything else 'text'")
            elif block.marks:
                say(f"{block.where}: a 'text' block is never run; drop its docs-check mark")
            continue
        if block.skip is not None:
            continue
        if block.lang == "bash":
            for argv in block.commands():
                if argv[0] != "faultzoo":
                    say(f"{block.where}: `{shlex.join(argv)}` is not a faultzoo command: mark the block "
                        "'<!-- docs-check: skip (REASON) -->' to say why it cannot run here")
        else:
            try:
                ast.parse(block.code)
            except SyntaxError as exc:
                say(f"{block.where}: not valid Python: {exc}")
    return found


def free_names(code: str) -> set[str]:
    """Names a Python block reads but never binds (nor are builtins): what it needs from earlier blocks."""
    used, bound = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return used - bound - set(dir(builtins))


def bound_names(code: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def session(earlier: list[Block], block: Block) -> list[Block]:
    """``block`` preceded by the earlier Python blocks of its page that define the names it misses."""
    need, chosen = free_names(block.code), [block]
    for previous in reversed(earlier):
        if need & bound_names(previous.code):
            chosen.insert(0, previous)
            need = (need - bound_names(previous.code)) | free_names(previous.code)
    if need:
        raise AssertionError(f"{block.where}: uses {sorted(need)}, which no earlier Python block of the page defines")
    return chosen


# ------------------------------------------------------------------------------------------------ inputs
def cifar10_npz(shared: Path, path: Path) -> None:
    """The first CIFAR10_IMAGES exact CIFAR-10 test images, as an .npz that --data reads."""
    import numpy as np

    with np.load(shared / "datasets" / "cifar10" / "test-first1000-exact.npz") as full:
        np.savez(path, **{key: full[key][:CIFAR10_IMAGES] for key in ("x", "y", "idx")})


def demo_commands(out: str, data: str, faults: int = FAULT_SAMPLE, workers: int = 2) -> list[list[str]]:
    """The faultzoo commands of the Makefile's ``demo`` target, with its variables set."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo:\n((?:\t.*\n)+)", text, re.M)
    assert recipe, "the Makefile has no demo target"
    values = {"DEMO_OUT": out, "DEMO_DATA": data, "DEMO_FAULTS": str(faults), "DEMO_WORKERS": str(workers)}
    commands = []
    for part in re.split(r";\s*", recipe[1].replace("\\\n", " ")):
        if part.strip().startswith('"$$venv/bin/faultzoo"'):
            part = re.sub(r"\$\((\w+)\)", lambda m: values[m[1]], part.strip())
            commands.append(["faultzoo", *shlex.split(part.split(None, 1)[1])])
    assert len(commands) >= 2, f"cannot read the demo's faultzoo commands from the Makefile: {commands}"
    return commands


@dataclass(frozen=True)
class Input:
    name: str
    what: str
    make: Callable[[Page, str], None]  # make(page, name) writes the file into page.folder


def _user_npz(page: Page, name: str) -> None:
    cifar10_npz(page.shared, page.folder / name)


def _published(page: Page, name: str) -> None:
    shutil.copyfile(page.shared / "faultlists" / "dnn-benchmarks" / "published-results" / name, page.folder / name)


def _demo(page: Page, name: str) -> None:
    cifar10_npz(page.shared, page.folder / "demo-images.npz")
    for argv in demo_commands("demo-out", "demo-images.npz"):
        page.faultzoo(argv, "make demo")


def _rn20_list(page: Page, name: str) -> None:
    page.faultzoo(["faultzoo", "faultlist", "cifar10/resnet20", "--format", "torch", "-o", name], f"make {name}")


def _own_resnet20(page: Page, name: str) -> None:
    page.python("import torch, faultzoo\n"
                f"torch.save(faultzoo.get_model('cifar10/resnet20', weights=None).state_dict(), {name!r})\n",
                f"make {name}", "make_input.py")


def _lab_net(page: Page, name: str) -> None:
    page.python(f"import torch, lab_nets\ntorch.manual_seed(0)\ntorch.save(lab_nets.build().state_dict(), {name!r})\n",
                f"make {name}", "make_input.py")


# What examples take as given: files a reader has (or makes on another page).
INPUTS = {item.name: item for item in (
    Input("test.npz", "the reader's own .npz of CIFAR-10 test images: the first 32 exact ones", _user_npz),
    Input("torch_gpu_image_classification_CIFAR10_fp32_resnet_ResNet32_FL.csv",
          "upstream's published resnet32 results, as downloaded from upstream", _published),
    Input("demo-out/campaign", "what `make demo` leaves: its commands, run on the offline images", _demo),
    Input("rn20_FL.csv", "the dnn-benchmarks list of cifar10/resnet20, made in the README's tour", _rn20_list),
    Input("my.pt", "a resnet20 checkpoint of the reader's own (untrained weights)", _own_resnet20),
    Input("lab_net.pt", "the weights of the reader's lab_nets.py network (its initial ones)", _lab_net),
)}

# The inputs each page takes as given (each made before the first block of the page that names it).
PAGE_INPUTS = {
    "docs/analysis.md": ("demo-out/campaign", "torch_gpu_image_classification_CIFAR10_fp32_resnet_ResNet32_FL.csv",
                         "rn20_FL.csv"),
    "docs/campaigns.md": ("test.npz",),
    "docs/cluster.md": ("test.npz", "rn20_FL.csv"),
    "docs/custom-models.md": ("lab_net.pt",),
    "docs/models.md": ("my.pt",),
}


def names(code: str, name: str) -> bool:
    """Whether ``code`` names the file ``name`` (as a word of its own, not part of a longer path)."""
    return re.search(rf"(?<![\w./-]){re.escape(name)}(?![\w.-])", code) is not None


# ------------------------------------------------------------------------------------------------ running
@dataclass
class Page:
    """One page's examples run in order in ``folder``."""

    page: Path
    folder: Path
    shared: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.values = {"cifar10": str(self.folder / "cifar10-test.npz"), "shared": str(self.shared)}
        cifar10_npz(self.shared, self.folder / "cifar10-test.npz")
        bin_dir = str(Path(sys.executable).parent)
        self.env = {**os.environ, **self.env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200"}

    def _run(self, args: list[str], what: str) -> None:
        done = subprocess.run(args, cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=TIMEOUT)
        assert done.returncode == 0, (f"{what} failed with status {done.returncode}:\n{done.stdout[-2000:]}\n"
                                      f"{done.stderr[-4000:]}")

    def faultzoo(self, argv: list[str], what: str) -> None:
        entry = Path(sys.executable).parent / "faultzoo"
        command = [str(entry)] if entry.is_file() else [sys.executable, "-m", "faultzoo"]
        self._run([*command, *argv[1:]], f"{what}: {shlex.join(argv)}")

    def python(self, code: str, what: str, script: str = "docs_example.py") -> None:
        (self.folder / script).write_text(code, encoding="utf-8")
        self._run([sys.executable, script], what)

    def inputs(self, code: str) -> None:
        """Make the inputs this page takes as given that ``code`` names, unless they exist."""
        for name in PAGE_INPUTS.get(self.name, ()):
            if names(code, name) and not (self.folder / name).exists():
                INPUTS[name].make(self, name)

    @property
    def name(self) -> str:
        return shown(self.page)

    def run(self) -> None:
        earlier: list[Block] = []
        for block in blocks(self.page):
            if block.lang not in EXAMPLE_LANGUAGES or block.skip is not None:
                continue
            code = substitute(block.code, self.values)
            self.inputs(block.code)
            if block.lang == "bash":
                for argv in Block(block.page, block.line, "bash", code).commands():
                    assert argv[0] == "faultzoo", f"{block.where}: `{shlex.join(argv)}` is not a faultzoo command"
                    self.faultzoo(argv, block.where)
                continue
            if block.file_name:
                (self.folder / block.file_name).write_text(code, encoding="utf-8")
            script = "\n".join(substitute(b.code, self.values) for b in session(earlier, block))
            self.python(script, block.where, f"example_{block.line}.py")
            earlier.append(block)
