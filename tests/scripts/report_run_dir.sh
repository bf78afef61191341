# kmoe report on a run directory: scores.h5, experts.h5 and data_selection.h5 made by the
# real stages on a tiny LLaMA and a PEFT bank, moe.h5 and eval.h5 written with h5py in the
# documented layout. First with only some artifacts (the other sections say they are
# omitted and write no plot), then with all; report.md must quote the artifacts' numbers
# and every PNG must decode (chunk CRCs, IHDR, inflated size). A malformed eval.h5 fails
# naming the file and dataset and leaves the previous report in place.
source "$(dirname "$0")/lib.sh"
: "${KMOE_REF_PYTHON:?}"
RUN="$WORK/run"
mkdir -p "$RUN"
PYTHONPATH="$(dirname "$0")" "$KMOE_REF_PYTHON" - "$WORK" <<'PY'  # tiny_llama.py
import json, os, sys
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM
from tiny_llama import write_byte_level_llama
work = sys.argv[1]
torch.manual_seed(3)
torch.set_num_threads(2)
model_dir = os.path.join(work, "model")
tok = write_byte_level_llama(model_dir, hidden=32, intermediate=48)
HEAD = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
questions = ["Is the %s real?" % t for t in ["sky", "sea", "leaf", "sun"]]
with open(os.path.join(work, "kshot.jsonl"), "w") as f:
    for i, q in enumerate(questions):
        f.write(json.dumps({"id": "q%d" % i, "question": q, "answer": "Y"}) + "\n")
def train(name, answer, seed, steps):
    torch.manual_seed(seed)
    base = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=2, lora_alpha=4, lora_dropout=0.0,
                                            target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for step in range(steps):
        q = questions[step % len(questions)]
        p_ids = tok.encode(HEAD + "\n\n### Instruction:\n" + q + "\n\n### Response:\n").ids
        c_ids = tok.encode(" " + answer).ids + [2]
        loss = model(input_ids=torch.tensor([p_ids + c_ids]), labels=torch.tensor([[-100] * len(p_ids) + c_ids])).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(os.path.join(work, "bank", name))
train("good0", "Y", 10, 40)
train("good1", "Y", 11, 40)
train("bad0", "N", 20, 40)
train("rand0", "Y", 30, 0)
train("rand1", "Y", 31, 0)
PY
"$PYTHON" "$(dirname "$0")/family_corpus.py" "$WORK"

mpi -np 2 "$KMOE" score --model "$WORK/model" --bank "$WORK/bank" --kshot "$WORK/kshot.jsonl" --answer-format exact \
  --max-new-tokens 3 --threads 1 --output "$RUN/scores.h5" 2> "$WORK/err" || { cat "$WORK/err"; fail "score"; }

# Only scores.h5: four sections omitted, one plot.
mpi -np 2 "$KMOE" report "$RUN" 2> "$WORK/err" || { cat "$WORK/err"; fail "report with scores.h5 only"; }
for a in experts.h5 data_selection.h5 moe.h5 eval.h5; do
  grep -q "_No $a in the run directory" "$RUN/report.md" || fail "no omitted line for $a: $(cat "$RUN/report.md")"
done
[ -f "$RUN/adapter_scores.png" ] || fail "adapter_scores.png missing"
for p in experts.png similarity_hist.png loss_curve.png router_load.png; do
  [ ! -e "$RUN/$p" ] || fail "$p written without its artifact"
done

mpi -np 2 "$KMOE" select-experts --scores "$RUN/scores.h5" --m 4 --n 2 --output "$RUN/experts.h5" > /dev/null 2> "$WORK/err" \
  || { cat "$WORK/err"; fail "select-experts"; }
mpi -np 2 "$KMOE" embed --corpus "$WORK/a.jsonl" "$WORK/b.jsonl" --kshot "$WORK/kshot.jsonl" --encoder decoder \
  --encoder-model "$WORK/model" --block-rows 32 --threads 1 --output "$RUN/embeddings.h5" 2> "$WORK/err" \
  || { cat "$WORK/err"; fail "embed"; }
mpi -np 1 "$KMOE" select-data --embeddings "$RUN/embeddings.h5" --corpus "$WORK/a.jsonl" "$WORK/b.jsonl" \
  --kshot "$WORK/kshot.jsonl" --c 30 --tau 0.999 --output-dir "$RUN" 2> "$WORK/err" || { cat "$WORK/err"; fail "select-data"; }

"$PYTHON" - "$RUN" <<'PY'
import sys, h5py, numpy as np
run = sys.argv[1]
s = h5py.string_dtype()
steps = np.arange(1, 201, dtype=np.int64)
with h5py.File(run + "/moe.h5", "w") as f:
    f["metrics/step"] = steps
    f["metrics/loss"] = (3.0 * np.exp(-steps / 60.0) + 0.5).astype(np.float32)
    f["metrics/lr"] = np.full(200, 1e-4, dtype=np.float32)
    f["metrics/grad_norm"] = np.linspace(2, 1, 200).astype(np.float32)
    f["metrics/tokens_per_s"] = np.full(200, 1234.5, dtype=np.float32)
    keys = ["layers.%d.%s" % (l, m) for l in range(2) for m in ("q_proj", "v_proj")]
    f.create_dataset("moe/keys", data=keys, dtype=s)
    f.create_dataset("moe/expert_names", data=["good0", "good1"], dtype=s)
    f["router_load"] = np.array([[30, 10], [20, 20], [5, 35], [40, 0]], dtype=np.float32)
    by_a = np.array([[25, 5], [15, 5], [3, 17], [30, 0]], dtype=np.float32)
    f["router_load_by_source"] = np.stack([by_a, f["router_load"][()] - by_a])
    f.create_dataset("sources", data=["a.jsonl", "b.jsonl"], dtype=s)
with h5py.File(run + "/eval.h5", "w") as f:
    f.create_dataset("models", data=["base", "moe", "good0"], dtype=s)
    f["accuracy"] = np.array([0.25, 0.75, 0.5], dtype=np.float32)
    f["macro_f1"] = np.array([0.2, 0.7, 0.45], dtype=np.float32)
    f["acc_ll"] = np.array([0.3, 0.8, 0.55], dtype=np.float32)
    f["acc_ll_norm"] = np.array([0.35, 0.6, 0.5], dtype=np.float32)
    f.attrs["task"] = "yes-no"
PY

mpi -np 2 "$KMOE" report "$RUN" 2> "$WORK/err" || { cat "$WORK/err"; fail "report"; }
cat "$RUN/report.md"
"$PYTHON" - "$RUN" <<'PY'
import re, struct, sys, zlib, h5py
run = sys.argv[1]
md = open(run + "/report.md").read()
def need(text):
    assert text in md, "report.md lacks %r" % text
assert "_No " not in md, "a section was omitted"
for h in ["## Adapter scores", "## Chosen experts", "## Data selection", "## Training", "## Evaluation"]:
    need(h)
with h5py.File(run + "/scores.h5", "r") as s:
    for name, acc in zip(s["adapters"].asstr()[:], s["acc"][:]):
        need("| %s | %.4f |" % (name, acc))
with h5py.File(run + "/experts.h5", "r") as e:
    chosen = list(e["chosen_names"].asstr()[:])
    cand = list(e["candidates"].asstr()[:])
    for k, name in enumerate(cand):
        mark = "yes" if name in chosen else ""
        need("| %s | %d | %d | %d | %s |" % (name, e["R_P"][k], e["R_A"][k], e["R"][k], mark))
    rows = [sorted(r) for r in e["subsets"][:]]
    c = rows.index(sorted(e["chosen"][:]))
    need("diversity Omega = %.4f" % e["subset_omega"][c])
    need("R_D = %d of %d" % (e["subset_R_D"][c], len(rows)))
scores_section = md.split("## Chosen experts")[0]
for name in cand + ["base"]:
    line = re.search(r"^\| %s \|.*$" % re.escape(name), scores_section, re.M).group(0)
    assert line.endswith("| yes |") == (name in chosen), line
with h5py.File(run + "/data_selection.h5", "r") as d:
    n, kept, dropped = len(d["scores"]), len(d["selected"]), len(d["dropped"])
    cut = min(d["scores"][i] for i in d["selected"][:])
need("| %d | %d | %d | %d | %.4f |" % (n, kept, dropped, n - kept - dropped, cut))
with h5py.File(run + "/moe.h5", "r") as m:
    need("| 200 | %.4f |" % m["metrics/loss"][-1])  # steps, final loss
need("| 1234.5 |")
need("| good0 | 95 | 0.594 |")  # router load: 95 of 160 tokens
need("| a.jsonl | 0.730 | 0.270 |")  # per data file: 73 of a's 100
need("| b.jsonl | 0.367 | 0.633 |")  # 22 of b's 60
need("Task: yes-no.")
need("| moe | 0.7500 | 0.7000 | 0.8000 | 0.6000 |")  # accuracy, macro-F1, acc_ll, acc_ll_norm
for png in ["adapter_scores", "experts", "similarity_hist", "loss_curve", "router_load"]:
    need("](%s.png)" % png)
    data = open("%s/%s.png" % (run, png), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", png
    pos, idat, types = 8, b"", []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), (png, kind)
        types.append(kind)
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert types[0] == b"IHDR" and types[-1] == b"IEND", types
    raw = zlib.decompress(idat)
    assert depth == 8 and colour == 2 and len(raw) == h * (3 * w + 1), (png, w, h, len(raw))
    colours = {raw[i:i + 3] for r in range(h) for i in range(r * (3 * w + 1) + 1, (r + 1) * (3 * w + 1), 3)}
    assert len(colours) > 4, (png, len(colours))
    print(png, w, "x", h, len(colours), "colours")

# report.html: the same tables, every plot inline as SVG, nothing fetched from elsewhere.
from html.parser import HTMLParser
class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.refs, self.cells, self.svg_text = {}, [], [], []
        self.stack = []
    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.stack.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href")]
    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass
    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("td", "th"):
            self.cells.append(data)
        if self.stack and self.stack[-1] == "text" and "svg" in self.stack:
            self.svg_text.append(data)
html = open(run + "/report.html", encoding="utf-8").read()
page = Page()
page.feed(html)
assert page.refs == [], page.refs
assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', ""), "a network reference"
assert page.tags.get("svg") == md.count("](") == 5, (page.tags.get("svg"), md.count("]("))
assert page.tags.get("table") == md.count("\n| ---"), (page.tags.get("table"), md.count("\n| ---"))
for cell in ["good0", "0.7500", "0.8000", "a.jsonl", "1234.5"]:
    assert cell in page.cells, cell
for label in ["good0", "chosen expert", "training loss", "router load"]:
    assert any(label in t for t in page.svg_text), label
print("report.html:", page.tags.get("table"), "tables,", page.tags.get("svg"), "inline SVG plots")
PY

# A person looks at report.html in a browser: headless Chromium renders it to a screenshot,
# which must show the plots' bars, the highlighted (chosen) ones, and text.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,5000 \
  --screenshot="$WORK/report.png" "file://$RUN/report.html" > "$WORK/chromium.log" 2>&1 ||
  { cat "$WORK/chromium.log"; fail "chromium could not render report.html"; }
"$PYTHON" - "$WORK/report.png" <<'PY' || fail "the screenshot of report.html"
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
px = list(im.getdata())
near = lambda c, t: sum(abs(a - b) for a, b in zip(c, t)) < 40
bars = sum(near(c, (90, 125, 180)) for c in px)
chosen = sum(near(c, (230, 120, 30)) for c in px)
ink = sum(sum(c) < 200 for c in px)
print("screenshot", im.size, "bar pixels", bars, "highlight pixels", chosen, "dark pixels", ink)
assert bars > 2000 and chosen > 300 and ink > 5000, (bars, chosen, ink)
PY

# Expert drift: moe.h5 above was written by hand (no inputs: the report says so); a mixture
# trained for real from good0 and bad0 is measured against the adapters' safetensors, with
# the out x in products formed in numpy.
mpi -np 2 "$KMOE" train --mode moe --model "$WORK/model" --data "$WORK/kshot.jsonl" --adapters "$WORK/bank/good0" \
  "$WORK/bank/bad0" --output "$RUN/moe_tiny.h5" --max-steps 6 --lr 0.05 --global-batch 4 --micro-batch 2 --threads 1 \
  > /dev/null 2> "$WORK/err" || { cat "$WORK/err"; fail "train --mode moe"; }
mpi -np 2 "$KMOE" report "$RUN" 2> "$WORK/err" || { cat "$WORK/err"; fail "report with moe_tiny.h5"; }
"$KMOE_REF_PYTHON" - "$RUN" "$WORK/bank" <<'PY' || fail "expert drift in report.md"
import re, sys, h5py, numpy as np
from safetensors.numpy import load_file
run, bank = sys.argv[1], sys.argv[2]
md = open(run + "/report.md").read()
assert "moe.h5: it records no inputs" in md, md
with h5py.File(run + "/moe_tiny.h5", "r") as f:
    for e, name in enumerate(f["moe/expert_names"].asstr()[:]):
        st = load_file("%s/%s/adapter_model.safetensors" % (bank, name))
        t = i = c = d = 0.0
        for key in f["moe/keys"].asstr()[:]:
            _, layer, proj = key.split(".")
            pre = "base_model.model.model.layers.%s.self_attn.%s" % (layer, proj)
            dw = f["moe/%s/lora_B" % key][e].astype(np.float64) @ f["moe/%s/lora_A" % key][e].astype(np.float64)
            dw0 = st[pre + ".lora_B.weight"].astype(np.float64) @ st[pre + ".lora_A.weight"].astype(np.float64)
            t += (dw ** 2).sum(); i += (dw0 ** 2).sum(); c += (dw * dw0).sum(); d += ((dw - dw0) ** 2).sum()
        row = re.search(r"^\| moe_tiny\.h5 \| %s \| (\S+) \| (\S+) \| (\S+) \|$" % name, md, re.M)
        assert row, (name, md)
        got = [float(x) for x in row.groups()]
        want = [np.sqrt(t / i), np.sqrt(d / i), c / np.sqrt(t * i)]
        print(name, "report", got, "numpy", want)
        assert np.allclose(got, want, atol=1.5e-3), (got, want)
        assert want[1] > 0.01, "training did not move %s" % name
PY

# A malformed eval.h5 stops the report, names the file and dataset, keeps the last report.
cp "$RUN/report.md" "$WORK/report.before"
"$PYTHON" -c "
import h5py, numpy as np, sys
with h5py.File(sys.argv[1] + '/eval.h5', 'a') as f:
    del f['accuracy']; f['accuracy'] = np.zeros(2, dtype=np.float32)
" "$RUN"
set +e
mpi -np 2 "$KMOE" report "$RUN" 2> "$WORK/err"; rc=$?
set -e
[ $rc -ne 0 ] || fail "report accepted a malformed eval.h5"
grep -q "eval.h5: /accuracy has 2 entries but /models has 3" "$WORK/err" || fail "message: $(cat "$WORK/err")"
cmp -s "$RUN/report.md" "$WORK/report.before" || fail "report.md changed by a failed run"
[ ! -e "$RUN/report.md.tmp" ] || fail "report.md.tmp left behind"
echo OK
