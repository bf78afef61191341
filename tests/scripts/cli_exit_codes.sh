# Usage errors exit 2 with a message listing what is valid; help and version exit 0.
source "$(dirname "$0")/lib.sh"
"$KMOE" --version | grep -Eq '^kmoe [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-z-]+)$' || fail "--version output"
"$KMOE" --help | grep -q 'info' || fail "--help lists info"
"$KMOE" info --help | grep -q -- '--json' || fail "info --help lists --json"

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
