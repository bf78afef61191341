# An artifact written by 3 ranks is read by h5py with the expected datasets and attributes.
source "$(dirname "$0")/lib.sh"
mpi -np 3 "$KMOE_ARTIFACT_WRITER" "$WORK/emb.h5" --rows 1000
[ -f "$WORK/emb.h5" ] && [ ! -e "$WORK/emb.h5.partial" ] || fail "artifact not committed"
"$PYTHON" - "$WORK/emb.h5" <<'PY'
import json, sys
import h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    e = f["embeddings"]
    assert e.shape == (1000, 8) and e.dtype == np.float16, (e.shape, e.dtype)
    assert e.chunks == (50, 8), e.chunks
    want = (np.arange(1000)[:, None] + 0.125 * np.arange(8)[None, :]).astype(np.float32).astype(np.float16)
    assert np.array_equal(e[:], want), "row data differs"
    assert list(f["ids"].asstr()[:]) == ["doc-0", "doc-1", "doc-2"]
    assert f["lines"].dtype == np.int64 and list(f["lines"][:]) == [1, 2, 3]
    assert f["scores"].dtype == np.float32 and list(f["scores"][:]) == [0.5, 0.25, 0.125]
    assert e.attrs["pooling"] == "mean"
    a = f.attrs
    assert a["format"] == "kmoe-artifact" and a["complete"] == 1 and a["world_size"] == 3
    assert a["stage"] == "embed" and json.loads(a["options"]) == {"rows": 1000}
    assert json.loads(a["inputs"]) == [{"name": "corpus", "path": "corpus.jsonl", "sha256": "00ff"}]
    assert a["tau"] == 0.9
    for k in ("kmoe_version", "git_revision", "start_time", "end_time"):
        assert isinstance(a[k], str) and a[k], k
    assert a["start_time"] <= a["end_time"]
print("h5py read the artifact: ok")
PY
