#!/usr/bin/env bash
# Formats every C++ file of the tree with clang-format (.clang-format at the root), or with
# --check changes nothing and fails, naming each file clang-format would change.
#   scripts/format.sh [--check]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mapfile -t files < <(find src include tests examples bench -name '*.cpp' -o -name '*.hpp' | sort)
if [[ "${1:-}" != --check ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
unformatted=()
for file in "${files[@]}"; do
  clang-format --dry-run -Werror "$file" >/dev/null 2>&1 || unformatted+=("$file")
done
if ((${#unformatted[@]} > 0)); then
  echo "clang-format would change ${#unformatted[@]} file(s); run 'make format':" >&2
  printf '  %s\n' "${unformatted[@]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files formatted"
