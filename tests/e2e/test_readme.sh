#!/usr/bin/env bash
# test_readme.sh -- every README code block marked runnable (an HTML
# comment `<!-- runnable -->` on the line before the fence) runs and exits
# 0, from the repository root, with s3rver from tests/run.sh and a scratch
# data root (TDM_DATA_ROOT) so it leaves nothing behind.
. "$(dirname "$0")/../lib/e2e.sh"
python3 - README.md "$tmp" <<'PY'
import re, sys, os
text = open(sys.argv[1], encoding="utf-8").read()
blocks = re.findall(r"<!-- runnable -->\s*\n```[a-z]*\n(.*?)```", text, re.S)
for i, b in enumerate(blocks):
    with open(os.path.join(sys.argv[2], "block%02d.sh" % i), "w") as f:
        f.write(b)
print(len(blocks))
PY
n=$(ls "$tmp"/block*.sh 2>/dev/null | wc -l)
[ "$n" -ge 1 ] && pass || fail "README has no runnable blocks"
e2e_world readme
for b in "$tmp"/block*.sh; do
  [ -f "$b" ] || continue
  if out=$(bash -e "$b" 2>&1); then pass
  else fail "README block $(basename "$b") failed: $(tail -n 5 <<<"$out")"; fi
done
# The README fits in one read, its error table is the error table's, and
# every page it links exists.
n=$(wc -l < README.md)
[ "$n" -ge 200 ] && [ "$n" -le 360 ] && pass || fail "README.md is $n lines (want about 250-350)"
check_out "README error-code table current" "README.md: error-code table up to date" \
  ./tdm-lua scripts/gen-readme-errors.lua README.md --check
for l in $(grep -oE '\]\(([A-Za-z0-9_./-]+)(#[a-z0-9-]*)?\)' README.md | sed -E 's/^\]\(([^)#]*).*/\1/' | sort -u); do
  [ -e "$l" ] && pass || fail "README links to $l, which does not exist"
done
grep -q '^scripts/demo.sh ' README.md && grep -q '^scripts/test.sh ' README.md && pass \
  || fail "README lost the two commands"
finish
