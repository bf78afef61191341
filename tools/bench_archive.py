#!/usr/bin/env python3
"""Keep a bench's evaluation files in the repository, so that a later session (on a fresh
machine, where the bench's output folder is gone) can add seeds or draws without
recomputing the earlier ones, and the tables' intervals stay paired over every example.

  bench_archive.py pack OUT ARCHIVE.json.gz
      every HDF5 file under OUT that holds kmoe eval's `models` and `correct` (eval.h5 and the
      benches' per-test files), with all its datasets and attributes (provenance included),
      into one gzipped JSON file; paths relative to OUT. Training runs, adapters and unit
      journals are not archived: the tables do not read them.
  bench_archive.py unpack ARCHIVE.json.gz OUT
      writes those files back under OUT with the same datasets, types and attributes. A file
      that already exists is left alone (a re-run's newer file wins); kmoe stages then find the
      restored ones complete for the same inputs and options, and skip them.
  bench_archive.py list ARCHIVE.json.gz
      the archived paths with their models.

Exit 1 with a message naming the file on anything unreadable.
"""
import base64
import gzip
import json
import os
import sys

import h5py
import numpy as np

FORMAT = "kmoe-bench-archive-1"


def is_eval_file(f):
    return "models" in f and "correct" in f


def encode_array(dset_or_attr_value, h5type):
    """A dataset's or attribute's value as JSON: dtype description, shape and the data."""
    value = np.asarray(dset_or_attr_value)
    if h5type is not None and h5py.check_string_dtype(h5type) is not None:
        info = h5py.check_string_dtype(h5type)
        flat = [x.decode(info.encoding) if isinstance(x, bytes) else str(x) for x in value.reshape(-1)]
        return {"string": info.encoding, "length": info.length, "shape": list(value.shape), "data": flat}
    if value.dtype.kind in "biuf":
        raw = np.ascontiguousarray(value).tobytes()
        return {"dtype": value.dtype.str, "shape": list(value.shape), "b64": base64.b64encode(raw).decode()}
    raise ValueError(f"unsupported type {value.dtype}")


def decode_array(d):
    """(numpy value, h5py dtype) from encode_array's JSON."""
    if "string" in d:
        dt = h5py.string_dtype(d["string"], d["length"])
        data = d["data"]
        if d["length"] is not None:  # fixed length: bytes, padded by HDF5
            arr = np.array([s.encode(d["string"]) for s in data], dtype=dt)
        else:
            arr = np.array(data, dtype=object)
        return arr.reshape(d["shape"]), dt
    arr = np.frombuffer(base64.b64decode(d["b64"]), dtype=np.dtype(d["dtype"])).reshape(d["shape"])
    return arr, arr.dtype


def attrs_of(obj):
    out = {}
    for name in obj.attrs:
        aid = obj.attrs.get_id(name)
        out[name] = encode_array(obj.attrs[name], aid.dtype)
    return out


def set_attrs(obj, attrs):
    for name, d in attrs.items():
        value, dt = decode_array(d)
        shape = tuple(d["shape"])
        if shape == ():
            value = value.reshape(())
        obj.attrs.create(name, value, shape=shape, dtype=dt)


def pack(out_dir, archive):
    files = {}
    for root, dirs, names in os.walk(out_dir):
        dirs[:] = sorted(x for x in dirs if not x.endswith(".units"))
        for name in sorted(names):
            if not name.endswith(".h5"):
                continue
            path = os.path.join(root, name)
            try:
                with h5py.File(path, "r") as f:
                    if not is_eval_file(f):
                        continue
                    datasets = {}

                    def visit(key, obj):
                        if isinstance(obj, h5py.Dataset):
                            datasets[key] = {"value": encode_array(obj[()], obj.dtype), "attrs": attrs_of(obj)}

                    f.visititems(visit)
                    files[os.path.relpath(path, out_dir)] = {"attrs": attrs_of(f), "datasets": datasets}
            except (OSError, ValueError) as e:
                sys.exit(f"bench_archive: {path}: {e}")
    if not files:
        sys.exit(f"bench_archive: {out_dir}: no kmoe eval file (with 'models' and 'correct') under it")
    tmp = archive + ".partial"
    with gzip.open(tmp, "wt", encoding="utf-8") as g:
        json.dump({"format": FORMAT, "files": files}, g, sort_keys=True)
    os.replace(tmp, archive)
    print(f"bench_archive: {len(files)} eval files from {out_dir} -> {archive} ({os.path.getsize(archive)} bytes)")


def read_archive(archive):
    try:
        with gzip.open(archive, "rt", encoding="utf-8") as g:
            a = json.load(g)
    except (OSError, ValueError, EOFError) as e:
        sys.exit(f"bench_archive: {archive}: {e}")
    if a.get("format") != FORMAT:
        sys.exit(f"bench_archive: {archive}: not a {FORMAT} file (format {a.get('format')!r})")
    return a


def unpack(archive, out_dir):
    a = read_archive(archive)
    written = kept = 0
    for rel, content in sorted(a["files"].items()):
        path = os.path.join(out_dir, rel)
        if os.path.isabs(rel) or ".." in rel.split(os.sep):
            sys.exit(f"bench_archive: {archive}: unsafe path {rel!r}")
        if os.path.exists(path):
            kept += 1
            continue
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = path + ".partial"
        with h5py.File(tmp, "w") as f:
            set_attrs(f, content["attrs"])
            for key, d in sorted(content["datasets"].items()):
                value, dt = decode_array(d["value"])
                ds = f.create_dataset(key, shape=tuple(d["value"]["shape"]), dtype=dt)
                if value.size:
                    ds[()] = value
                set_attrs(ds, d["attrs"])
        os.replace(tmp, path)
        written += 1
    print(f"bench_archive: {archive} -> {out_dir}: {written} files written, {kept} already there (kept)")


def list_archive(archive):
    for rel, content in sorted(read_archive(archive)["files"].items()):
        models = decode_array(content["datasets"]["models"]["value"])[0]
        names = [m.decode() if isinstance(m, bytes) else str(m) for m in models.reshape(-1)]
        print(f"{rel}: {', '.join(names)}")


def main(argv):
    if len(argv) == 4 and argv[1] == "pack":
        pack(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "unpack":
        unpack(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "list":
        list_archive(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
