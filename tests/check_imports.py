#!/usr/bin/env python3
"""Checks that every Python module the reference and helper scripts import is importable by the
interpreter that runs them, after setup.sh (.ci/run runs it before the tests; a fresh machine
missing a package fails here, naming it, instead of in the middle of ctest).

What is checked, found with `ast` (and, for snippets that are not whole Python files, with a
regular expression over their import lines):
  - tests/parity/*.py (the *_reference.py fixtures, peft_check_saved.py): build/refenv/bin/python;
  - tests/scripts/*.py and bench/*.py: the interpreters the *.sh files beside them run them
    with ("$KMOE_REF_PYTHON", build/refenv/bin/python -> the reference venv; "$PYTHON",
    python3, /usr/bin/python3 -> Debian's python3), and those of the files and snippets that
    import them; a script nothing runs or imports: Debian's python3;
  - the python embedded in tests/scripts/*.sh and bench/*.sh (`"$PYTHON" - <<'PY'` here
    documents and `-c '...'` snippets), with the interpreter that runs them.
Each module is really imported (not only looked up), in a subprocess of its interpreter, so
that a package's own missing dependency (sentence-transformers -> Pillow) is found too.
Imports inside `try: ... except ImportError` are optional and are skipped.

Usage: python3 tests/check_imports.py [--build DIR] [-v]     (from anywhere; DIR default build)
Exit status 0 when everything imports, 1 otherwise, with one line per failing import.
"""
import argparse
import ast
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_MODULES = {f[:-3] for folder in ("tests/parity", "tests/scripts", "bench")
                for f in os.listdir(os.path.join(ROOT, folder)) if f.endswith(".py")}
REF, SYS = "ref", "sys"

# An interpreter token of a shell line, and which interpreter it stands for.
INTERPRETERS = [
    (re.compile(r'"?\$\{?KMOE_REF_PYTHON(:[?-][^}]*)?\}?"?'), REF),
    (re.compile(r'[\w$/{}.-]*refenv/bin/python3?\b'), REF),
    (re.compile(r'"?\$\{?PYTHON(:-[^}]*)?\}?"?(?![\w])'), SYS),
    (re.compile(r'(?<![\w/.-])(/usr/bin/)?python3\b'), SYS),
]
IMPORT_LINE = re.compile(r'(?:^|[;\n]|\bthen\b)\s*(import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*'
                         r'|from\s+[\w.]+\s+import\s+\(?[\w\s,]+\)?)')


def rel(path):
    return os.path.relpath(path, ROOT)


def optional(node, parents):
    """Whether an import node sits in the body of a try whose handlers catch ImportError."""
    child = node
    for parent in parents:
        if isinstance(parent, ast.Try) and child in parent.body:
            for h in parent.handlers:
                names = []
                if h.type is None:
                    return True
                for t in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]):
                    names.append(getattr(t, "id", getattr(t, "attr", "")))
                if {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"} & set(names):
                    return True
        child = parent
    return False


def imports_of_source(source):
    """[(statement, lineno)] of a Python source: ('import a.b', n) or ('from a import b', n)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [(m.group(1).strip(), source.count("\n", 0, m.start(1)) + 1) for m in IMPORT_LINE.finditer(source)]
    out = []

    def walk(node, parents):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and not optional(child, [node] + parents):
                if isinstance(child, ast.Import):
                    for a in child.names:
                        out.append((f"import {a.name}", child.lineno))
                elif child.level == 0 and child.module != "__future__":
                    out.append((f"from {child.module} import {', '.join(a.name for a in child.names)}", child.lineno))
            walk(child, [node] + parents)

    walk(tree, [])
    return out


def interpreter_of(line, ref_vars):
    for rx, which in INTERPRETERS:
        if rx.search(line):
            return which
    for var in ref_vars:  # PY=$BUILD/refenv/bin/python ... "$PY" - <<'PY'
        if re.search(r'"?\$\{?' + var + r'\}?"?\s', line):
            return REF
    return None


def shell_snippets(path):
    """(interpreter, snippet source, first line) of the python a shell script runs inline, and
    {script.py: interpreter} of the python files it runs."""
    lines = open(path, encoding="utf-8").read().split("\n")
    ref_vars = [m.group(1) for l in lines for m in [re.match(r'\s*(\w+)=\S*refenv/bin/python3?\b', l)] if m]
    snippets, files = [], {}
    i = 0
    while i < len(lines):
        line = lines[i]
        which = interpreter_of(line, ref_vars)
        if which:
            here = re.search(r"<<-?\s*(['\"]?)(\w+)\1", line)
            if here and re.search(r'\s-\s|\s-$', line.split("<<")[0] + " "):
                end, body, j = here.group(2), [], i + 1
                while j < len(lines) and lines[j].strip() != end:
                    body.append(lines[j])
                    j += 1
                snippets.append((which, "\n".join(body), i + 2))
                i = j + 1
                continue
            c = re.search(r"\s-c\s+(['\"])", line)
            if c:
                quote, start = c.group(1), c.end()
                text, j = line[start:], i
                while quote not in text and j + 1 < len(lines):
                    j += 1
                    text += "\n" + lines[j]
                snippets.append((which, text.split(quote)[0], i + 1))
            for m in re.finditer(r'([\w$/{}"().-]*?)(\w+\.py)\b', line):
                files.setdefault(m.group(2), set()).add(which)
        i += 1
    return snippets, files


def collect(build):
    """{interpreter: {statement: [where, ...]}}"""
    need = {REF: {}, SYS: {}}

    def add(which, stmts, where):
        for stmt, lineno in stmts:
            need[which].setdefault(stmt, []).append(f"{where}:{lineno}")

    runs = {}  # script.py -> interpreters, from the shell scripts
    imported = {}  # a repository module -> the interpreters of the snippets that import it
    for folder in ("tests/scripts", "bench"):
        d = os.path.join(ROOT, folder)
        for name in sorted(os.listdir(d)):
            if name.endswith(".sh"):
                snippets, files = shell_snippets(os.path.join(d, name))
                for which, src, first in snippets:
                    # a module of the repository's own (bench/roofline.py, put on sys.path by
                    # the snippet) is checked as a file below, with the snippet's interpreter
                    stmts = imports_of_source(src)
                    add(which, [(s, first + n - 1) for s, n in stmts
                                if s.split()[1].split(".")[0] not in REPO_MODULES], f"{folder}/{name}")
                    for s, _ in stmts:
                        if s.split()[1].split(".")[0] in REPO_MODULES:
                            imported.setdefault((folder, s.split()[1].split(".")[0]), set()).add(which)
                for f, whiches in files.items():
                    runs.setdefault(os.path.join(folder, f), set()).update(whiches)
    modules = {}  # (folder, module) -> (path, its statements, the local modules it imports)
    for folder in ("tests/parity", "tests/scripts", "bench"):
        d = os.path.join(ROOT, folder)
        local = {f[:-3] for f in os.listdir(d) if f.endswith(".py")}
        for name in sorted(os.listdir(d)):
            if name.endswith(".py"):
                path = os.path.join(d, name)
                stmts = imports_of_source(open(path, encoding="utf-8").read())
                modules[(folder, name[:-3])] = (path, [(s, n) for s, n in stmts if s.split()[1].split(".")[0] not in local],
                                              {s.split()[1].split(".")[0] for s, _ in stmts} & local)
    # A file runs under the interpreters that run it, and those of the files and snippets that
    # import it (tiny_llama.py, imported by scripts that run under the reference venv); a file
    # nothing runs or imports, under Debian's python3.
    whiches = {key: {REF} if key[0] == "tests/parity" else set(runs.get(os.path.join(*key) + ".py", set()))
               | imported.get(key, set()) for key in modules}
    changed = True
    while changed:
        changed = False
        for key, (_, _, deps) in modules.items():
            for dep in deps:
                if not whiches[key] <= whiches[(key[0], dep)]:
                    whiches[(key[0], dep)] |= whiches[key]
                    changed = True
    for key, (path, stmts, _) in modules.items():
        for which in whiches[key] or {SYS}:
            add(which, stmts, rel(path))
    return need


CHECKER = r"""
import importlib, json, sys
out = []
for stmt in json.load(sys.stdin):
    words = stmt.replace(",", " ").split()
    try:
        mod = importlib.import_module(words[1])
        if words[0] == "from":
            for name in words[3:]:
                if name in ("(", ")"):
                    continue
                if not hasattr(mod, name):
                    importlib.import_module(words[1] + "." + name)
        out.append([stmt, None, None])
    except BaseException as e:
        missing = getattr(e, "name", None) if isinstance(e, ImportError) else None
        out.append([stmt, f"{type(e).__name__}: {e}", missing])
print("\n" + json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="the build folder (with refenv/)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every import checked")
    args = ap.parse_args()
    pythons = {REF: os.path.join(args.build, "refenv", "bin", "python"), SYS: "/usr/bin/python3"}
    need = collect(args.build)
    bad = 0
    for which, stmts in need.items():
        python = pythons[which]
        if not stmts:
            continue
        if not os.access(python, os.X_OK):
            print(f"MISSING interpreter {python} (run ./setup.sh): the {len(stmts)} imports of "
                  f"{len({w.rsplit(':', 1)[0] for ws in stmts.values() for w in ws})} scripts it runs are not checked")
            bad += len(stmts)
            continue
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
        p = subprocess.run([python, "-c", CHECKER], input=json.dumps(sorted(stmts)), capture_output=True, text=True,
                           cwd="/", env=env)
        try:
            results = json.loads(p.stdout.strip().split("\n")[-1])
        except (ValueError, IndexError):
            print(f"check_imports: {python} could not run the check (rc {p.returncode}):\n{p.stderr[-2000:]}")
            bad += 1
            continue
        for stmt, error, missing in results:
            if error is None:
                if args.verbose:
                    print(f"ok   {rel(python) if python.startswith(ROOT) else python}: {stmt}")
                continue
            bad += 1
            where = ", ".join(stmts[stmt][:4]) + (" ..." if len(stmts[stmt]) > 4 else "")
            name = f"module '{missing}' is missing" if missing else "import fails"
            print(f"MISSING {name}: `{stmt}` under {python} ({where}): {error}")
    n = sum(len(s) for s in need.values())
    if bad:
        print(f"check_imports: {bad} of {n} imports fail; setup.sh must install what they need "
              f"(Debian packages, or tests/parity/requirements*.txt for build/refenv)")
        return 1
    print(f"check_imports: all {n} imports of the reference and helper scripts work "
          f"({len(need[REF])} under build/refenv/bin/python, {len(need[SYS])} under /usr/bin/python3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
