#!/bin/sh
# scripts/sync_all_training_data.sh -- the seed's ./sync_all_training_data.sh (bulk S3 -> local download), as a thin
# wrapper: exec `tdm-lua pull-all` with every argument passed through.
# tdm-lua is the one built in this script's repository, else the one on PATH.
#   scripts/sync_all_training_data.sh --help
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -x "$here/tdm-lua" ]; then exec "$here/tdm-lua" pull-all "$@"; fi
if command -v tdm-lua >/dev/null 2>&1; then exec tdm-lua pull-all "$@"; fi
echo "sync_all_training_data.sh: tdm-lua not found (build it with 'make' in $here, or install it)" >&2
exit 2
