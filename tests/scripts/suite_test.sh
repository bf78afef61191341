# kmoe suite: same seed -> identical folder, another seed -> other data, a complete suite is
# left alone, a different one is replaced only with --force, bad options exit 2, and the
# manifest lists every file with its line count and sha256.
source "$(dirname "$0")/lib.sh"
small=(--samples-per-dataset 50 --kshot 4 --test 20 --pretrain-docs 30)

"$KMOE" suite --help | grep -q -- '--samples-per-dataset' || fail "suite --help lists --samples-per-dataset"

"$KMOE" suite --output "$WORK/a" --seed 3 "${small[@]}"
"$KMOE" suite --output "$WORK/b" --seed 3 "${small[@]}"
diff -r "$WORK/a" "$WORK/b" > /dev/null || fail "same seed gave different files"
[ ! -e "$WORK/a.partial" ] || fail "a.partial left behind"

"$PYTHON" - "$WORK/a" <<'PY' || fail "manifest does not describe the files"
import hashlib, json, os, sys
root = sys.argv[1]
m = json.load(open(os.path.join(root, "suite.json")))
entries = [m["pretrain"]] + m["datasets"] + [t[s] for t in m["tasks"] for s in ("kshot", "validation", "test")] + [k for t in m["tasks"] for k in t["kshot_draws"]]
for e in entries:
    data = open(os.path.join(root, e["file"]), "rb").read()
    assert hashlib.sha256(data).hexdigest() == e["sha256"], e["file"]
    assert data.count(b"\n") == e["count"], e["file"]
assert len(m["datasets"]) >= 16 and len({d["family"] for d in m["datasets"]}) >= 4
assert {t["answer_type"] for t in m["tasks"]} >= {"choice", "yesno", "number", "regex"}
assert m["seed"] == 3 and m["options"]["kshot"] == 4 and m["tasks"][0]["test"]["count"] == 20
PY

# A complete suite with the same manifest is left alone (not even rewritten).
before=$(stat -c %Y.%N "$WORK/a/suite.json")
sleep 1
"$KMOE" suite --output "$WORK/a" --seed 3 "${small[@]}" 2> "$WORK/err"
grep -q "left as it is" "$WORK/err" || fail "rerun message: $(cat "$WORK/err")"
[ "$(stat -c %Y.%N "$WORK/a/suite.json")" = "$before" ] || fail "complete suite rewritten"

# Another seed: other data; over an existing suite only with --force.
"$KMOE" suite --output "$WORK/c" --seed 4 "${small[@]}"
for f in open/arith.add.jsonl tasks/math/test.jsonl pretrain.jsonl; do
  cmp -s "$WORK/a/$f" "$WORK/c/$f" && fail "seeds 3 and 4 gave the same $f"
done
set +e
"$KMOE" suite --output "$WORK/a" --seed 4 "${small[@]}" 2> "$WORK/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "other suite over a: exit $rc"
grep -q -- "--force" "$WORK/err" || fail "message does not mention --force: $(cat "$WORK/err")"
diff -r "$WORK/a" "$WORK/b" > /dev/null || fail "refused run changed a"
"$KMOE" suite --output "$WORK/a" --seed 4 "${small[@]}" --force
diff -r "$WORK/a" "$WORK/c" > /dev/null || fail "--force did not replace a with the seed-4 suite"

# Bad options are usage errors (exit 2) naming the option.
for bad in "--kshot 0" "--test 0" "--validation 0" "--kshot-draws 0" "--samples-per-dataset 0" "--pretrain-docs -3" "--seed -1" "--kshot x"; do
  set +e
  # shellcheck disable=SC2086
  "$KMOE" suite --output "$WORK/bad" $bad 2> "$WORK/err"; rc=$?
  set -e
  [ $rc -eq 2 ] || fail "'$bad': exit $rc"
  grep -q -- "${bad%% *}" "$WORK/err" || fail "'$bad' message: $(cat "$WORK/err")"
  [ ! -e "$WORK/bad" ] || fail "'$bad' wrote a folder"
done

# Under mpirun one rank writes; the result is the same suite.
mpi -np 2 "$KMOE" suite --output "$WORK/m" --seed 3 "${small[@]}"
diff -r "$WORK/m" "$WORK/b" > /dev/null || fail "mpirun -np 2 gave a different suite"
echo "suite: ok"
