#!/usr/bin/env bash
# Regenerate src/lib/api/schema.d.ts from the backend's OpenAPI document.
#   scripts/gen-api.sh           write src/lib/api/schema.d.ts
#   scripts/gen-api.sh --check   fail if the committed file differs from a fresh generation
# The backend prints its OpenAPI JSON with `python -m backend.openapi` (set PYTHON to choose
# the interpreter; default: the repository's .venv). OPENAPI_JSON=path uses a saved document instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
target="$here/src/lib/api/schema.d.ts"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [[ -n "${OPENAPI_JSON:-}" ]]; then
	cp "$OPENAPI_JSON" "$tmp/openapi.json"
else
	(cd "$repo" && "$python" -m backend.openapi) > "$tmp/openapi.json"
fi
(cd "$here" && npx --no-install openapi-typescript "$tmp/openapi.json" --default-non-nullable=false -o "$tmp/schema.d.ts" >/dev/null)

if [[ "${1:-}" == "--check" ]]; then
	if ! diff -u "$target" "$tmp/schema.d.ts" > "$tmp/diff"; then
		echo "src/lib/api/schema.d.ts is out of date with the backend's OpenAPI document." >&2
		echo "Run 'npm run gen:api' in frontend/ and commit the result. Difference:" >&2
		head -n 80 "$tmp/diff" >&2
		exit 1
	fi
	echo "src/lib/api/schema.d.ts matches the backend's OpenAPI document."
else
	cp "$tmp/schema.d.ts" "$target"
	echo "Wrote src/lib/api/schema.d.ts"
fi
