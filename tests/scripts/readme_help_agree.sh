# README and --help agree: every --option README's "The pipeline stages" names for a
# subcommand is one that subcommand's --help lists, and every subcommand of `kmoe --help`
# is named in the README.
source "$(dirname "$0")/lib.sh"
"$PYTHON" - "$(dirname "$0")/../../README.md" "$KMOE" <<'PY'
import re, subprocess, sys
readme, kmoe = sys.argv[1], sys.argv[2]
md = open(readme, encoding="utf-8").read()
section = md[md.index("## The pipeline stages"):md.index("### Input formats")]
bullets = re.split(r"\n- \*\*`kmoe ", section)[1:]
assert len(bullets) >= 8, len(bullets)
bad = []
for b in bullets:
    sub = b.split("`")[0].split()[0]
    out = subprocess.run([kmoe, sub, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, (sub, out.stderr)
    for opt in sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", b))):
        if opt not in out.stdout:
            bad.append("README names %s for kmoe %s, which its --help does not list" % (opt, sub))
top = subprocess.run([kmoe, "--help"], capture_output=True, text=True).stdout
subs = re.findall(r"^  ([a-z-]+) ", top.split("Subcommands:")[1], re.M)
assert len(subs) >= 10, subs
for sub in subs:
    if "kmoe " + sub not in md:
        bad.append("kmoe --help lists %s, which README never names" % sub)
assert not bad, "\n".join(bad)
print(len(bullets), "README stage entries agree with --help;", len(subs), "subcommands named in README")
PY
echo ok
