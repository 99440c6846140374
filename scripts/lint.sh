#!/usr/bin/env bash
# The lint, as CI runs it (scripts/test.sh runs it first): ESLint (rules, the 450-line limit),
# Prettier (formatting; `npm run format` fixes it) and dependency-cruiser (no import cycles; each
# layer of src/ imports only from the layers below it). All three run; the exit status is non-zero
# if any of them failed. Configs: eslint.config.js, .prettierrc.json, .dependency-cruiser.cjs.
# Usage: npm run lint
set -uo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
failed=()

echo "lint: eslint"
"$bin/eslint" . || failed+=(eslint)
echo "lint: prettier --check"
"$bin/prettier" --check --log-level warn '**/*.{ts,js,cjs,mjs}' || failed+=(prettier)
echo "lint: dependency-cruiser"
"$bin/depcruise" --config .dependency-cruiser.cjs src bench test demo || failed+=(dependency-cruiser)

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "lint: clean"
