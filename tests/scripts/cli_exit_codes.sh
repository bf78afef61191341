# Usage errors exit 2 with a message listing what is valid; help and version exit 0.
source "$(dirname "$0")/lib.sh"
"$KMOE" --version | grep -Eq '^kmoe [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-z-]+)$' || fail "--version output"
"$KMOE" --help | grep -q 'info' || fail "--help lists info"
"$KMOE" info --help | grep -q -- '--json' || fail "info --help lists --json"
# The top-level list: one line per subcommand. A subcommand's usage names its positional
# arguments once ("PROMPT...", not "prompt" eight times).
"$KMOE" --help > "$WORK/help"
! grep -q "Checkpoints" "$WORK/help" || fail "kmoe --help carries a subcommand's long text"
sed -n '/^Subcommands:/,/^$/p' "$WORK/help" | sed '1d;$d' > "$WORK/entries"
[ "$(wc -l < "$WORK/entries")" -ge 10 ] || fail "kmoe --help lists $(wc -l < "$WORK/entries") subcommands"
! grep -vE '^  [a-z-]+ +[A-Z]' "$WORK/entries" || fail "kmoe --help: an entry over several lines"
"$KMOE" generate --help > "$WORK/generate-help"
head -1 "$WORK/generate-help" | grep -qx 'Usage: kmoe generate \[options\] PROMPT\.\.\.' ||
  fail "generate usage: $(head -1 "$WORK/generate-help")"
"$KMOE" run --help > "$WORK/run-help"
grep -q "docs/run.example.ini" "$WORK/run-help" || fail "kmoe run --help does not point at the example config"
# The example config has every key a run needs: a dry run accepts it.
"$KMOE" run "$(dirname "$0")/../../docs/run.example.ini" --run-dir "$WORK/example-run" --dry-run > "$WORK/plan" ||
  fail "kmoe run --dry-run refuses docs/run.example.ini"
grep -q "^eval" "$WORK/plan" || fail "dry run of the example lists no eval stage: $(cat "$WORK/plan")"
# Defaults as a person writes them, not the double's 17 digits.
# (grep reads a file: grep -q on a pipe may end before kmoe has written, and pipefail fails.)
"$KMOE" train --help > "$WORK/train-help"
grep -q -- '--lr arg (=5e-05)' "$WORK/train-help" || fail "train --help prints --lr's default as 5e-05"
"$KMOE" select-data --help > "$WORK/select-help"
grep -q -- '--tau arg (=0.9)' "$WORK/select-help" || fail "select-data --help prints --tau's default as 0.9"

set +e
"$KMOE" frobnicate > "$WORK/out" 2> "$WORK/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "unknown subcommand exit $rc"
grep -q "unknown subcommand 'frobnicate' (valid: info" "$WORK/err" || fail "unknown subcommand message: $(cat "$WORK/err")"

set +e
"$KMOE" info --jsn 2> "$WORK/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "unknown option exit $rc"
grep -q -- "unknown option '--jsn' (valid: --json" "$WORK/err" || fail "unknown option message: $(cat "$WORK/err")"
grep -q -- "Run 'kmoe info --help' for usage" "$WORK/err" || fail "a subcommand's usage error points at its help"
grep -q -- "Run 'kmoe --help' for usage" <("$KMOE" frobnicate 2>&1) || fail "an unknown subcommand points at kmoe --help"

printf 'json = true\nbogus = 1\n' > "$WORK/bad.ini"
set +e
"$KMOE" info --config "$WORK/bad.ini" 2> "$WORK/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "bad config exit $rc"
grep -q "bad.ini:2: unknown option 'bogus'" "$WORK/err" || fail "bad config message: $(cat "$WORK/err")"

# A usage error under mpirun is printed once, not once per rank, and still exits 2.
set +e
mpi -np 2 "$KMOE" info --jsn 2> "$WORK/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "usage error under mpirun exit $rc"
[ "$(grep -c "unknown option" "$WORK/err")" -eq 1 ] || fail "message printed $(grep -c "unknown option" "$WORK/err") times"

# Config sets --json; the command line cannot unset a bool switch, but the file applies.
printf 'json = true\n' > "$WORK/good.ini"
"$KMOE" info --config "$WORK/good.ini" | "$PYTHON" -c 'import json,sys; json.load(sys.stdin)' || fail "config json = true"
echo "cli exit codes: ok"
