#!/usr/bin/python3
"""Holds kmoe artifacts against the layout description (docs/artifacts.json).

    check_artifacts.py DESCRIPTION [FILE...] [--require KIND,KIND,...]

Each FILE is recognised by its root attribute `stage` (and, where a stage writes several
kinds, by its file name and its `options` JSON's `mode`), then every dataset and attribute
the description lists must be there (unless it is optional) with the listed type and rank,
the symbolic dimensions must have one size per file (`adapters` the same in every dataset
that names it; a dimension marked `per` has one size per element of that list), and the
file must hold nothing the description does not list. Every problem is printed as
`FILE: /OBJECT: what`; the exit status is 1 when there was one. `--require` fails when no
FILE was of one of the given kinds (the description's `file` names). The description itself
is checked first (exit 2 when it is malformed); with no FILE, that is all.

Run with Debian's python3 (h5py, numpy).
"""
import argparse
import fnmatch
import json
import math
import os
import re
import sys

import h5py
import numpy as np

DTYPES = {"float", "int", "string"}
ATTR_TYPES = {"string", "int", "float"}
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DescriptionError(Exception):
    pass


def dims_in(expr):
    """The dimension names an expression such as `adapters*samples` or `comb(M, N)` uses."""
    return [w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr) if w != "comb"]


def eval_dim(expr, sizes):
    return eval(expr, {"__builtins__": {}}, dict(sizes, comb=math.comb))  # noqa: S307 (the repository's own file)


KEYS = {
    "description": {"about", "version", "dtypes", "attribute_types", "notes", "root_attributes", "artifacts",
                    "other_outputs"},
    "artifact": {"file", "stage", "command", "written_by", "where", "summary", "companion", "match_file",
                 "match_options_mode", "dims", "attributes", "groups", "datasets"},
    "dimension": {"meaning", "equals", "equals_attribute", "per"},
    "dataset": {"name", "dtype", "float16", "shape", "for_each", "optional", "meaning", "attributes"},
    "attribute": {"name", "type", "value", "json", "optional", "short", "meaning"},
    "group": {"name", "meaning", "attributes"},
}


def validate_description(desc):
    """Raises DescriptionError naming what is malformed."""
    def known(obj, kind, where):
        unknown = set(obj) - KEYS[kind]
        if unknown:
            raise DescriptionError(f"{where}: unknown {kind} keys {sorted(unknown)}")

    def need(obj, key, where):
        if key not in obj:
            raise DescriptionError(f"{where}: no '{key}'")
        return obj[key]

    def check_attrs(attrs, where):
        seen = set()
        for a in attrs:
            name = need(a, "name", where)
            known(a, "attribute", f"{where} attribute {name}")
            if name in seen:
                raise DescriptionError(f"{where}: attribute '{name}' listed twice")
            seen.add(name)
            if need(a, "type", f"{where} attribute {name}") not in ATTR_TYPES:
                raise DescriptionError(f"{where} attribute {name}: type must be one of {sorted(ATTR_TYPES)}")
            need(a, "meaning", f"{where} attribute {name}")
            if "json" in a and a["type"] != "string":
                raise DescriptionError(f"{where} attribute {name}: 'json' needs type string")

    known(desc, "description", "description")
    check_attrs(need(desc, "root_attributes", "description"), "root_attributes")
    files = set()
    for art in need(desc, "artifacts", "description"):
        file = need(art, "file", "artifact")
        known(art, "artifact", file)
        if file in files:
            raise DescriptionError(f"artifact {file} listed twice")
        files.add(file)
        for key in ("stage", "command", "summary", "where", "datasets"):
            need(art, key, file)
        dims = art.get("dims", {})
        for d, info in dims.items():
            if not IDENT.match(d) or d == "comb":
                raise DescriptionError(f"{file}: bad dimension name '{d}'")
            need(info, "meaning", f"{file} dimension {d}")
            known(info, "dimension", f"{file} dimension {d}")
            if "equals" in info:
                for w in dims_in(info["equals"]):
                    if w not in dims:
                        raise DescriptionError(f"{file} dimension {d}: 'equals' names undeclared dimension '{w}'")
        check_attrs(art.get("attributes", []), file)
        common = {a["name"] for a in desc["root_attributes"]}
        for a in art.get("attributes", []):
            if a["name"] in common:
                raise DescriptionError(f"{file}: root attribute '{a['name']}' is already a common one")
        for g in art.get("groups", []):
            known(g, "group", f"{file} group {need(g, 'name', file)}")
            check_attrs(g.get("attributes", []), f"{file} group {g['name']}")
        used, names = set(), set()
        for ds in art["datasets"]:
            name = need(ds, "name", file)
            where = f"{file} dataset {name}"
            if name in names:
                raise DescriptionError(f"{file}: dataset '{name}' listed twice")
            names.add(name)
            need(ds, "meaning", where)
            known(ds, "dataset", where)
            kinds = ds["dtype"] if isinstance(need(ds, "dtype", where), list) else [ds["dtype"]]
            if not kinds or any(k not in DTYPES for k in kinds):
                raise DescriptionError(f"{where}: dtype must be one (or a list) of {sorted(DTYPES)}")
            if ds.get("float16") and "float" not in kinds:
                raise DescriptionError(f"{where}: 'float16' on a dataset that is not float")
            shape = need(ds, "shape", where)
            if shape != "any":
                if not isinstance(shape, list):
                    raise DescriptionError(f"{where}: shape must be a list or \"any\"")
                for s in shape:
                    if isinstance(s, int):
                        continue
                    for w in dims_in(s):
                        if w not in dims:
                            raise DescriptionError(f"{where}: shape names undeclared dimension '{w}'")
                        used.add(w)
            if ("{" in name) != ("for_each" in ds):
                raise DescriptionError(f"{where}: a name with a {{PLACEHOLDER}} needs 'for_each', and only it")
            if "for_each" in ds and ds["for_each"] not in names:
                raise DescriptionError(f"{where}: for_each '{ds['for_each']}' must be a string dataset listed before it")
            check_attrs(ds.get("attributes", []), where)
        for d, info in dims.items():
            if "per" in info and info["per"] not in names:
                raise DescriptionError(f"{file} dimension {d}: 'per' names no dataset")
        unused = set(dims) - used
        if unused:
            raise DescriptionError(f"{file}: dimensions declared but used by no dataset: {sorted(unused)}")


class FileCheck:
    def __init__(self, path, f):
        self.path = path
        self.f = f
        self.errors = []

    def error(self, obj, what):
        self.errors.append(f"{self.path}: {obj}: {what}")


def attr_kind(obj, name):
    """('string'|'int'|'float'|other, shape) of an attribute as stored."""
    aid = obj.attrs.get_id(name)
    dt, shape = aid.dtype, aid.shape
    if h5py.check_string_dtype(dt) is not None:
        return "string", shape
    if dt == np.int64:
        return "int", shape
    if dt == np.float64:
        return "float", shape
    return str(dt), shape


def check_attributes(fc, obj, objname, listed, extra_ok=()):
    listed_names = {a["name"] for a in listed}
    for a in listed:
        name = a["name"]
        if name not in obj.attrs:
            if not a.get("optional"):
                fc.error(objname, f"attribute '{name}' missing")
            continue
        kind, shape = attr_kind(obj, name)
        if kind != a["type"] or shape != ():
            fc.error(objname, f"attribute '{name}' is {kind} of shape {shape}, described as a scalar {a['type']}")
            continue
        value = obj.attrs[name]
        if "value" in a and value != a["value"]:
            fc.error(objname, f"attribute '{name}' is {value!r}, described as {a['value']!r}")
        if "json" in a:
            try:
                parsed = json.loads(value)
            except ValueError as e:
                fc.error(objname, f"attribute '{name}' is not JSON: {e}")
                continue
            want = {"object": dict, "array": list}[a["json"]]
            if not isinstance(parsed, want):
                fc.error(objname, f"attribute '{name}' is JSON {type(parsed).__name__}, described as {a['json']}")
    for name in obj.attrs:
        if name not in listed_names and name not in extra_ok:
            fc.error(objname, f"attribute '{name}' is not in the description")


def dataset_kind(ds, allow_f16):
    dt = ds.dtype
    if h5py.check_string_dtype(dt) is not None:
        info = h5py.check_string_dtype(dt)
        if info.length is None:
            return "variable-length string"
        if info.encoding != "utf-8":
            return f"{info.encoding} string"
        return "string"
    if dt == np.int64:
        return "int"
    if dt == np.float32 or (allow_f16 and dt == np.float16):
        return "float"
    return str(dt)


def pick_artifact(desc, path, f):
    stage = f.attrs.get("stage")
    if stage is None:
        return None, "not a kmoe artifact: no root attribute 'stage'"
    try:
        mode = json.loads(f.attrs.get("options", "{}")).get("mode")
    except (ValueError, AttributeError):
        mode = None
    base = os.path.basename(path)
    found = []
    for art in desc["artifacts"]:
        if art["stage"] != stage:
            continue
        if "match_file" in art and not fnmatch.fnmatch(base, art["match_file"]):
            continue
        found.append(art)
    # A kind named by its file name wins over one that is not; then the options' mode decides.
    if any("match_file" in a for a in found):
        found = [a for a in found if "match_file" in a]
    if len(found) > 1:
        found = [a for a in found if "match_options_mode" not in a or mode in a["match_options_mode"]]
    elif found and "match_options_mode" in found[0] and mode not in found[0]["match_options_mode"]:
        return None, f"stage '{stage}' with options mode {mode!r} matches no described artifact"
    if not found:
        return None, f"stage '{stage}', file name '{base}': no artifact of the description matches"
    if len(found) > 1:
        return None, f"stage '{stage}', file name '{base}': matches {[a['file'] for a in found]}"
    return found[0], None


def check_file(desc, path):
    with h5py.File(path, "r") as f:
        fc = FileCheck(path, f)
        art, why = pick_artifact(desc, path, f)
        if art is None:
            fc.error("/", why)
            return None, fc.errors
        dims = art.get("dims", {})
        sizes = {}        # global dimension -> (size, where it was first seen)
        local = {}        # (dimension, element) -> (size, where)
        deferred = []     # (expression, size, where)
        expected = {}     # dataset path -> spec

        def bind(d, size, where, element):
            key = (d, element) if "per" in dims[d] else d
            table = local if "per" in dims[d] else sizes
            if key not in table:
                table[key] = (size, where)
            elif table[key][0] != size:
                other = table[key]
                scope = f" (for {element})" if "per" in dims[d] else ""
                fc.error(where, f"dimension '{d}'{scope} is {size} here but {other[0]} in {other[1]}")

        for ds in art["datasets"]:
            if "for_each" in ds:
                names_path = ds["for_each"]
                if names_path not in f or not isinstance(f[names_path], h5py.Dataset):
                    continue  # reported as the missing list itself
                placeholder = re.search(r"\{[A-Za-z_]+\}", ds["name"]).group(0)
                for element in f[names_path].asstr()[:]:
                    if element:  # an empty name stands for an empty list
                        expected["/" + ds["name"].replace(placeholder, element)] = (ds, element)
            else:
                expected["/" + ds["name"]] = (ds, None)

        for obj, (ds, element) in expected.items():
            if obj not in f:
                if not ds.get("optional"):
                    fc.error(obj, "dataset missing")
                continue
            d = f[obj]
            if not isinstance(d, h5py.Dataset):
                fc.error(obj, "is a group, described as a dataset")
                continue
            kinds = ds["dtype"] if isinstance(ds["dtype"], list) else [ds["dtype"]]
            kind = dataset_kind(d, ds.get("float16", False))
            if kind not in kinds:
                fc.error(obj, f"dtype {d.dtype} ({kind}), described as {' or '.join(kinds)}")
            shape = ds["shape"]
            if shape != "any":
                if len(d.shape) != len(shape):
                    fc.error(obj, f"rank {len(d.shape)} (shape {d.shape}), described as {len(shape)}: {shape}")
                else:
                    for sym, size in zip(shape, d.shape):
                        if isinstance(sym, int):
                            if size != sym:
                                fc.error(obj, f"has size {size} where the description says {sym} (shape {d.shape})")
                        elif IDENT.match(sym):
                            bind(sym, size, obj, element)
                        else:
                            deferred.append((sym, size, obj))
            check_attributes(fc, d, obj, ds.get("attributes", []))

        for sym, size, obj in deferred:
            known = {w: sizes[w][0] for w in dims_in(sym) if w in sizes}
            if len(known) == len(set(dims_in(sym))) and eval_dim(sym, known) != size:
                fc.error(obj, f"size {size} is not {sym} = {eval_dim(sym, known)}")
        for d, info in dims.items():
            if d not in sizes:
                continue
            if "equals" in info:
                known = {w: sizes[w][0] for w in dims_in(info["equals"]) if w in sizes}
                if len(known) == len(set(dims_in(info["equals"]))):
                    want = eval_dim(info["equals"], known)
                    if sizes[d][0] != want:
                        fc.error(sizes[d][1], f"dimension '{d}' is {sizes[d][0]}, not {info['equals']} = {want}")
            if "equals_attribute" in info:
                ea = info["equals_attribute"]
                objname = ea["object"] if ea["object"].startswith("/") else "/" + ea["object"]
                if objname in f and ea["name"] in f[objname].attrs:
                    value = f[objname].attrs[ea["name"]]
                    if value != sizes[d][0]:
                        fc.error(sizes[d][1], f"dimension '{d}' is {sizes[d][0]} but attribute "
                                              f"{objname}@{ea['name']} is {value}")

        # Root and group attributes.
        check_attributes(fc, f, "/", desc["root_attributes"] + art.get("attributes", []))
        groups = {}
        for g in art.get("groups", []):
            groups["/" + g["name"]] = g
            if "/" + g["name"] not in f:
                fc.error("/" + g["name"], "group missing")
            elif not isinstance(f["/" + g["name"]], h5py.Group):
                fc.error("/" + g["name"], "is a dataset, described as a group")
            else:
                check_attributes(fc, f["/" + g["name"]], "/" + g["name"], g.get("attributes", []))

        # Nothing beyond the description: every dataset listed, every group on the way to one.
        parents = set(groups)
        for obj in expected:
            parts = obj.strip("/").split("/")
            for i in range(1, len(parts)):
                parents.add("/" + "/".join(parts[:i]))

        def visit(name, item):
            obj = "/" + name
            if isinstance(item, h5py.Dataset):
                if obj not in expected:
                    fc.error(obj, "dataset is not in the description")
            elif obj not in parents:
                fc.error(obj, "group is not in the description")
            elif obj not in groups:
                check_attributes(fc, item, obj, [])

        f.visititems(visit)
        return art["file"], fc.errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("description")
    ap.add_argument("files", nargs="*", help="artifacts to check (none: only validate the description)")
    ap.add_argument("--require", default="", help="comma-separated kinds (file names of the description) that must be among FILE")
    args = ap.parse_args()
    with open(args.description, encoding="utf-8") as fh:
        desc = json.load(fh)
    try:
        validate_description(desc)
    except DescriptionError as e:
        print(f"{args.description}: {e}", file=sys.stderr)
        return 2
    known = {a["file"] for a in desc["artifacts"]}
    required = [k for k in args.require.split(",") if k]
    for k in required:
        if k not in known:
            print(f"--require: '{k}' is no artifact of {args.description} ({sorted(known)})", file=sys.stderr)
            return 2
    if not args.files and not required:
        print(f"{args.description}: well formed ({len(desc['artifacts'])} artifacts)")
        return 0
    failed = False
    seen = {}
    for path in args.files:
        try:
            kind, errors = check_file(desc, path)
        except OSError as e:
            kind, errors = None, [f"{path}: cannot read: {e}"]
        if kind:
            seen.setdefault(kind, []).append(path)
        for e in errors:
            print(e, file=sys.stderr)
        if errors:
            failed = True
        else:
            print(f"{path}: {kind}: ok")
    for k in required:
        if k not in seen:
            print(f"no {k} among the files checked", file=sys.stderr)
            failed = True
    print("checked " + ", ".join(f"{k} x{len(v)}" for k, v in sorted(seen.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
