# Issue 17: the artifact layouts have one description, docs/artifacts.json. It is well formed
# (tests/tools/check_artifacts.py, which holds real artifacts against it in demo_tiny and
# non_finite_values, validates it), and README.md's artifact list and docs/ARCHITECTURE.md's
# Artifacts section are exactly what tools/artifact_docs.py writes from it.
source "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
"$PYTHON" "$root/tests/tools/check_artifacts.py" "$root/docs/artifacts.json" || fail "docs/artifacts.json is malformed"
"$PYTHON" "$root/tools/artifact_docs.py" --check --root "$root" > "$WORK/diff" ||
  { cat "$WORK/diff"; fail "README.md / docs/ARCHITECTURE.md differ from docs/artifacts.json: run python3 tools/artifact_docs.py"; }
# The check sees a stale document: a copy with one dataset dropped from the description.
mkdir -p "$WORK/copy/docs"
cp "$root/README.md" "$WORK/copy/"
cp "$root/docs/ARCHITECTURE.md" "$WORK/copy/docs/"
"$PYTHON" - "$root/docs/artifacts.json" "$WORK/copy/docs/artifacts.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["artifacts"][0]["datasets"].pop()
json.dump(d, open(sys.argv[2], "w"))
PY
"$PYTHON" "$root/tools/artifact_docs.py" --check --root "$WORK/copy" > /dev/null 2>&1 && fail "--check passed a stale README"
echo "ok"
