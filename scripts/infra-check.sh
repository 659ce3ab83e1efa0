#!/usr/bin/env bash
# Static checks of infra/: terraform fmt, offline init and validate of every example (through
# the provider mirror named in infra/terraformrc), and checkov with zero failed checks.
# The apply against moto is an integration test (tests/it/infra.rs), run by the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

export TF_CLI_CONFIG_FILE="$PWD/infra/terraformrc"
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 BC_SKIP_MAPPING=TRUE

terraform fmt -check -recursive infra
.venv-tools/bin/python scripts/infra-docs.py --check
for example in infra/examples/*/; do
  echo "infra-check: validating $example"
  terraform -chdir="$example" init -backend=false -input=false -no-color >/dev/null
  terraform -chdir="$example" validate -no-color
done
echo "infra-check: checkov"
.venv-tools/bin/checkov -d infra --framework terraform --quiet --compact --skip-download
