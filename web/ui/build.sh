#!/bin/sh
# Rebuilds web/dist from web/ui/src with the exact package versions pinned
# in package-lock.json. Output is deterministic: CI runs this and fails when
# git diff shows web/dist changed.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
npm run build
