# kmoe run end to end on a tiny setup (tiny_pipeline.py), np = 2: a full run makes every
# artifact and forces nothing; a second run skips every stage; a lost selected.jsonl makes
# select-data run again, alone, and run.json says why; --from select-data reruns select-data and the
# later stages only; --only eval runs eval alone; bank-build wires the bank it builds into
# score; [train.prompt] adds the soft-prompt stage (ProMoT) whose prompt train and eval use;
# [panda] adds panda-learn and eval-panda (PANDA) after eval; a bad config key or section,
# --only without its inputs and an unknown stage are usage errors.
source "$(dirname "$0")/lib.sh"
: "${KMOE_REF_PYTHON:?}"
"$KMOE_REF_PYTHON" "$(dirname "$0")/tiny_pipeline.py" "$WORK"
write_config() {  # FILE RUN_DIR [extra lines]
  cat > "$1" <<INI
# tiny pipeline
run-dir = $2
model = $WORK/model
kshot = $WORK/kshot.jsonl
corpus = $WORK/a.jsonl $WORK/b.jsonl
test = $WORK/test.jsonl
answer-format = number
max-new-tokens = 4
threads = 1
[score]
bank = $WORK/bank
[select-experts]
m = 3
n = 2
[embed]
encoder-model = $WORK/model
block-rows = 16
[select-data]
c = 12
tau = 0.99
[train]
epochs = 1
max-steps = 6
global-batch = 4
checkpoint-every = 2
[eval]
base = true
${3:-}
INI
}
cfg="$WORK/run.ini"
run="$WORK/run"
write_config "$cfg" "$run"
status_of() {  # prints "stage=status ..." from run.json
  "$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["status"], " ".join(s["name"]+"="+s["status"] for s in r["stages"]))' "$run/run.json"
}
expect_status() {  # "complete score=ran ..."
  local got; got=$(status_of)
  [ "$got" = "$1" ] || fail "run.json: expected '$1', got '$got'"
}

mpi -np 2 "$KMOE" run "$cfg" > "$WORK/out1" 2> "$WORK/err1" || { cat "$WORK/err1"; fail "first run"; }
for f in scores.h5 experts.h5 embeddings.h5 data_selection.h5 selected.jsonl moe.h5 eval.h5 report.md run.json; do
  [ -s "$run/$f" ] || fail "first run: $run/$f missing"
done
expect_status "complete score=ran select-experts=ran embed=ran select-data=ran train=ran eval=ran report=ran"
# a first run forces nothing; run.json says why each stage ran
! grep -q "forced\|forcing" "$WORK/err1" || fail "first run: a stage was forced: $(grep "forc" "$WORK/err1")"
reason_of() {  # STAGE -> "forced=BOOL reason=..." from run.json
  "$PYTHON" -c 'import json,sys; s=[s for s in json.load(open(sys.argv[1]))["stages"] if s["name"]==sys.argv[2]][0]; print("forced=%s reason=%s" % (s["forced"], s["reason"]))' "$run/run.json" "$1"
}
[ "$(reason_of select-data)" = "forced=False reason=missing" ] || fail "first run: select-data $(reason_of select-data)"
"$PYTHON" - "$run" <<'PY'
import h5py, json, sys
run = sys.argv[1]
record = json.load(open(run + "/run.json"))
assert "[select-data]" in record["config_text"] and record["world_size"] == 2, record
with h5py.File(run + "/experts.h5") as e:
    chosen = list(e["chosen_paths"].asstr()[:])
train = [s for s in record["stages"] if s["name"] == "train"][0]["wiring"]
assert train["adapters"] == chosen, (train, chosen)  # the experts select-experts chose
assert run + "/selected.jsonl" in train["data"], train
assert train["mode"] == "moe" and train["output"] == run + "/moe.h5", train
print("train wiring:", train)
PY

mpi -np 2 "$KMOE" run "$cfg" > "$WORK/out2" 2> "$WORK/err2" || { cat "$WORK/err2"; fail "second run"; }
for s in score select-experts embed select-data train eval; do
  grep -q "stage $s: skipped (complete)" "$WORK/err2" || { cat "$WORK/err2"; fail "second run did not skip $s"; }
done
expect_status "complete score=skipped select-experts=skipped embed=skipped select-data=skipped train=skipped eval=skipped report=ran"
[ "$(reason_of eval)" = "forced=False reason=complete" ] || fail "second run: eval $(reason_of eval)"

# selected.jsonl lost beside a complete data_selection.h5: select-data writes it again, and
# the training after it, whose input is the same bytes again, stays complete
rm "$run/selected.jsonl"
mpi -np 2 "$KMOE" run "$cfg" 2> "$WORK/err2b" || { cat "$WORK/err2b"; fail "run after selected.jsonl was lost"; }
expect_status "complete score=skipped select-experts=skipped embed=skipped select-data=ran train=skipped eval=skipped report=ran"
[ "$(reason_of select-data)" = "forced=False reason=$run/selected.jsonl is missing" ] ||
  fail "selected.jsonl lost: select-data $(reason_of select-data)"
[ -s "$run/selected.jsonl" ] || fail "selected.jsonl was not written again"

mpi -np 2 "$KMOE" run "$cfg" --from select-data 2> "$WORK/err3" || { cat "$WORK/err3"; fail "--from select-data"; }
expect_status "complete score=skipped select-experts=skipped embed=skipped select-data=ran train=ran eval=ran report=ran"

mpi -np 2 "$KMOE" run "$cfg" --only eval 2> "$WORK/err4" || { cat "$WORK/err4"; fail "--only eval"; }
expect_status "complete score=not selected select-experts=not selected embed=not selected select-data=not selected train=not selected eval=ran report=not selected"

# bank-build: the bank is trained from the corpus (one adapter per file) and scored.
write_config "$WORK/bank.ini" "$WORK/run_bank" "[bank]
max-steps = 2
global-batch = 2
[run]
bank-build = true"
sed -i 's/^m = 3/m = 2/' "$WORK/bank.ini"
mpi -np 2 "$KMOE" run "$WORK/bank.ini" --to select-experts 2> "$WORK/err5" || { cat "$WORK/err5"; fail "bank-build"; }
"$PYTHON" - "$WORK/run_bank" <<'PY'
import h5py, sys
run = sys.argv[1]
with h5py.File(run + "/scores.h5") as s:
    assert sorted(s["adapters"].asstr()[:]) == ["a", "b", "base"], list(s["adapters"].asstr()[:])
with h5py.File(run + "/experts.h5") as e:
    assert all(p.startswith(run + "/bank/") for p in e["chosen_paths"].asstr()[:])
PY

# [train.prompt]: the soft-prompt stage (ProMoT) trains on the K-shot set before the MoE; train
# and eval then use the prompt (their provenance names it).
write_config "$WORK/promot.ini" "$WORK/run_promot" "[train.prompt]
prompt-tokens = 4
max-steps = 3
global-batch = 4
lr = 0.05"
mpi -np 2 "$KMOE" run "$WORK/promot.ini" --to eval 2> "$WORK/err6" || { cat "$WORK/err6"; fail "[train.prompt] run"; }
"$PYTHON" - "$WORK/run_promot" <<'PY'
import h5py, json, sys
run = sys.argv[1]
record = json.load(open(run + "/run.json"))
status = " ".join(s["name"] + "=" + s["status"] for s in record["stages"])
assert "select-data=ran soft-prompt=ran train=ran eval=ran" in status, status
stage = {s["name"]: s["wiring"] for s in record["stages"] if "wiring" in s}
assert stage["soft-prompt"]["mode"] == "prompt" and stage["soft-prompt"]["data"] == [sys.argv[1].rsplit("/", 1)[0] + "/kshot.jsonl"], stage
assert stage["train"]["soft_prompt"] == run + "/soft_prompt" and stage["eval"]["soft_prompt"] == run + "/soft_prompt", stage
cfg = json.load(open(run + "/soft_prompt/adapter_config.json"))
assert cfg["peft_type"] == "PROMPT_TUNING" and cfg["num_virtual_tokens"] == 4, cfg
for f in ("moe.h5", "eval.h5"):
    with h5py.File(run + "/" + f) as h:
        names = [i["name"] for i in json.loads(h.attrs["inputs"])]
        assert "soft_prompt" in names, (f, names)
print("soft-prompt stage:", status)
PY

# [panda]: panda-learn (the MoE as the expert, the base as the LLM, embed's encoder for the
# keys) and eval-panda (the base with the nearest insights) run after eval in the same run
# directory; the stages before them are complete and skipped.
write_config "$WORK/panda.ini" "$run" "[panda]
max-insight-tokens = 8
candidates = 3
[eval.panda]
insight-k = 2"
mpi -np 2 "$KMOE" run "$WORK/panda.ini" 2> "$WORK/err7" || { cat "$WORK/err7"; fail "[panda] run"; }
"$PYTHON" - "$run" "$WORK" <<'PY'
import h5py, json, sys
run, work = sys.argv[1:]
record = json.load(open(run + "/run.json"))
status = " ".join(s["name"] + "=" + s["status"] for s in record["stages"])
assert "train=skipped eval=skipped panda-learn=ran eval-panda=ran" in status, status
wiring = {s["name"]: s["wiring"] for s in record["stages"] if "wiring" in s}
assert wiring["panda-learn"]["expert_moe"] == run + "/moe.h5" and wiring["panda-learn"]["llm"] == work + "/model", wiring
assert wiring["panda-learn"]["encoder_model"] == work + "/model", wiring
kshot = sum(1 for l in open(work + "/kshot.jsonl") if l.strip())
test = sum(1 for l in open(work + "/test.jsonl") if l.strip())
with h5py.File(run + "/insights.h5") as p:
    assert len(p["keys"]) == kshot and str(p.attrs["encoder_kind"]) == "decoder", dict(p.attrs)
    assert "expert_moe" in [i["name"] for i in json.loads(p.attrs["inputs"])]
with h5py.File(run + "/eval_panda.h5") as e:
    assert [m.decode() for m in e["models"][()]] == ["base"] and e["insight_rows"].shape == (test, 2)
print("panda stages:", status)
PY
grep -q "^## PANDA insights (insights.h5)" "$run/report.md" && grep -q "^| base + insights |" "$run/report.md" ||
  fail "report.md has no PANDA section: $(grep -A12 PANDA "$run/report.md")"

expect_usage() {  # NEEDLE ARGS...
  local needle=$1; shift
  set +e; mpi -np 2 "$KMOE" run "$@" > /dev/null 2> "$WORK/err"; local rc=$?; set -e
  [ $rc -eq 2 ] || { cat "$WORK/err"; fail "kmoe run $*: exit $rc, expected 2"; }
  grep -qF -- "$needle" "$WORK/err" || fail "kmoe run $*: no '$needle' in: $(cat "$WORK/err")"
}
write_config "$WORK/bad.ini" "$WORK/run_bad" "[train]
epoch = 3"
line=$(grep -n '^epoch = 3' "$WORK/bad.ini" | cut -d: -f1)
expect_usage "bad.ini:$line: unknown option 'epoch'" "$WORK/bad.ini"
[ ! -e "$WORK/run_bad" ] || fail "a usage error left $WORK/run_bad behind"
write_config "$WORK/fresh.ini" "$WORK/run_fresh"
expect_usage "missing input $WORK/run_fresh/moe.h5 (made by stage train)" "$WORK/fresh.ini" --only eval
expect_usage "unknown stage 'evaluate'" "$WORK/fresh.ini" --from evaluate
write_config "$WORK/typo.ini" "$WORK/run_typo" "[train.promt]
lr = 0.1"
expect_usage "unknown section [train.promt]" "$WORK/typo.ini"
echo "kmoe run: ok"
