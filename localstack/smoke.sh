#!/usr/bin/env bash
# Smoke test of a deployed MemorySync API: health, signup, first API key, add a memory, query it back.
# Usage: localstack/smoke.sh <api base url>   (e.g. the ApiUrl stack output)
# Prints step names and HTTP statuses only: never tokens, keys or memory text.
set -euo pipefail

base="${1:?usage: smoke.sh <api base url>}"
base="${base%/}"
run_id="$(date +%s)-${RANDOM}"
email="smoke-${run_id}@example.com"
password="Smoke-${run_id}-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
end_user="smoke-user-${run_id}"

status=""
body=""
fail() { printf 'smoke: FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'smoke: ok   %s\n' "$*" >&2; }

# request METHOD PATH [JSON_BODY] [curl header args...] -> sets $status and $body
request() {
  local method="$1" path="$2" data="${3:-}"
  shift 3 || shift $#
  local out
  out="$(mktemp)"
  local args=(-sS -o "${out}" -w '%{http_code}' -X "${method}" "${base}${path}"
    -H 'content-type: application/json' -H 'accept: application/json' --max-time 60 "$@")
  if [[ -n "${data}" ]]; then args+=(--data "${data}"); fi
  status="$(curl "${args[@]}")" || { rm -f "${out}"; fail "${method} ${path}: no response"; }
  body="$(cat "${out}")"
  rm -f "${out}"
}

# field DOT.PATH [DOT.PATH...] -> first present value in $body, or empty
field() {
  node -e 'let v; try { const j = JSON.parse(process.argv[1]);
    for (const p of process.argv.slice(2)) { v = p.split(".").reduce((o, k) => (o == null ? o : o[k]), j); if (v != null) break; }
  } catch {} process.stdout.write(v == null ? "" : String(v));' "${body}" "$@"
}

expect_status() {
  local step="$1"
  shift
  for code in "$@"; do
    if [[ "${status}" == "${code}" ]]; then pass "${step} (${status})"; return 0; fi
  done
  fail "${step}: HTTP ${status}, error code '$(field error.code detail.error code)'"
}

request GET /health ""
expect_status "GET /health" 200
[[ "$(field status)" == "ok" || "$(field status)" == "degraded" ]] || fail "GET /health: unexpected status field"

request POST /auth/signup "{\"email\":\"${email}\",\"password\":\"${password}\",\"organization_name\":\"Smoke ${run_id}\",\"full_name\":\"Smoke Test\"}"
expect_status "POST /auth/signup" 200 201
token="$(field tokens.access_token access_token)"
[[ -n "${token}" ]] || fail "POST /auth/signup: no access token in the response"

request POST /org/api-keys '{"name":"smoke"}' -H "authorization: Bearer ${token}"
expect_status "POST /org/api-keys" 200 201
api_key="$(field key api_key)"
[[ "${api_key}" == ms_* ]] || fail "POST /org/api-keys: no ms_… key in the response"

auth=(-H "x-api-key: ${api_key}" -H "x-end-user-id: ${end_user}")
request POST /memory/add '{"text":"The smoke test user always drinks green tea in the morning.","source":"smoke"}' "${auth[@]}"
expect_status "POST /memory/add" 200 201

request POST /memory/query '{"query":"what does the user drink in the morning?","k":5}' "${auth[@]}"
expect_status "POST /memory/query" 200
[[ "${body}" == *"green tea"* ]] || fail "POST /memory/query: the memory just added was not recalled"
pass "recalled the added memory"

printf 'smoke: PASS against %s\n' "${base}" >&2
