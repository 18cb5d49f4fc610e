#!/usr/bin/env bash
# Interleaved A/B of `azr-exec bench --sections engine`: an older commit against this checkout,
# on the same machine, alternating, so the VM's drift falls on both sides.
#   scripts/bench_ab.sh [OLD_COMMIT] [ROUNDS]      (default: 13a81c3, the last commit before issue 11)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
old_commit="${1:-13a81c3}"
rounds="${2:-3}"
old_tree="$(mktemp -d)/old"
git -C "$here" worktree add -q --detach "$old_tree" "$old_commit"
trap 'git -C "$here" worktree remove --force "$old_tree"' EXIT
out="$(mktemp -d)"
for round in $(seq 1 "$rounds"); do
  for side in old new; do
    tree="$here"; [[ $side == old ]] && tree="$old_tree"
    cli=cli; [[ -f "$tree/cli/main.py" ]] || cli=executor.cli   # the CLI's module before issue 14
    (cd "$tree" && PYTHONPATH="$tree" AZR_DATA_DIR="${AZR_DATA_DIR:-$here/data}" \
      "$here/.venv/bin/python" -m "$cli" bench --sections engine --json "$out/$side-$round.json" >/dev/null 2>&1)
    "$here/.venv/bin/python" - "$out/$side-$round.json" "$side" "$round" <<'PY'
import json, sys
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))["sections"]["engine"]["rows"]}
validate = rows["engine validate, cold (repeats=2)"]["executions_per_s"]
tiny = rows["engine validate, tiny programs"]["executions_per_s"]
base = next(r for n, r in rows.items() if n.startswith("BASELINE"))["executions_per_s"]
print(f"{sys.argv[2]:>3} round {sys.argv[3]}: validate {validate:,.0f}/s, tiny {tiny:,.0f}/s, "
      f"baseline {base:,.0f}/s, validate/baseline {validate / base:.2f}")
PY
  done
done
