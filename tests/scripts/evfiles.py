"""The eval files (kmoe eval's layout) that tests/scripts/promot_moe_table.sh writes for
tools/promot_dmt_table.py: one writer, imported by each of its Python snippets."""
import os

import h5py
import numpy as np


def ev_rows(path, rows, correct):
    """PATH: an eval.h5 with the model ROWS, CORRECT[r] the 0/1 answers of row r"""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        f["models"] = np.array(rows, dtype=h5py.string_dtype())
        f["samples"] = np.array([f"s{i}" for i in range(len(correct[0]))], dtype=h5py.string_dtype())
        f["correct"] = np.array(correct, dtype=np.int8)
        f["macro_f1"] = np.array([np.nan] * len(rows))


def ev(path, row, correct):
    """PATH: an eval.h5 with one model ROW"""
    ev_rows(path, [row], [correct])
