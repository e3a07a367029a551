#!/usr/bin/env bash
# A claim's life with curl: the README walk-through, runnable (make test runs it too).
# Uses the service on LEDGER_PORT (default 8000) if it answers, else starts one (embedded
# PostgreSQL, or LEDGER_DATABASE_URL) and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
LEDGER=${LEDGER:-.venv/bin/ledger}
L=http://127.0.0.1:${LEDGER_PORT:-8000}

if ! curl -sf "$L/health" >/dev/null 2>&1; then
  LOG=$(mktemp -t ledger-walkthrough.XXXXXX)
  "$LEDGER" serve --port "${LEDGER_PORT:-8000}" >"$LOG" 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do                       # wait for /health (up to 60 s)
    curl -sf "$L/health" >/dev/null 2>&1 && break
    kill -0 $SERVER 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.5
  done
fi
curl -sf "$L/health"; echo

# Users and tokens (a token is printed once; re-running creates a fresh one)
token() { "$LEDGER" users create "$1" --role "$2" --quiet 2>/dev/null || "$LEDGER" tokens create "$1"; }
CODER="Authorization: Bearer $(token walk-coder coder)"
BILLER="Authorization: Bearer $(token walk-biller biller)"
JSON='Content-Type: application/json'
field() { python3 -c "import sys, json; print(json.load(sys.stdin)$1)"; }

E=$(curl -sf -H "$BILLER" -H "$JSON" "$L/encounters" -d '{
  "facility_id":"FAC-01","patient_ref":"PT-1001","service_from":"2026-03-10","place_of_service":"11",
  "responsible_parties":[{"bucket":"primary","kind":"insurer","payer_id":"PAYER-A","member_id":"M1"},
                         {"bucket":"patient","kind":"patient"}]}' | field '["encounter_id"]')
echo "encounter $E"
curl -sf -H "$CODER" -H "$JSON" "$L/encounters/$E/diagnoses" -d '{"code":"E11.9"}'; echo
curl -sf -H "$CODER" -H "$JSON" "$L/encounters/$E/lines" \
     -d '{"procedure_code":"99214","charge":"180.00","pointers":[1],"rendering_npi":"1234567893"}'; echo
curl -sf -H "$BILLER" -H "$JSON" "$L/encounters/$E/claims" -d '{"claim_number":"C-0001"}'; echo
curl -sf -H "$BILLER" -X POST "$L/encounters/$E/claims/C-0001/scrub"; echo
curl -sf -H "$BILLER" -H "$JSON" -H "Idempotency-Key: submit-$E" \
     "$L/encounters/$E/claims/C-0001/submit" -d '{}'; echo
curl -sf -H "$BILLER" -H "$JSON" "$L/encounters/$E/claims/C-0001/adjudications" -d '{
  "status_code":"1","charge":"180.00","paid":"98.50","patient_responsibility":"30.00","payer_icn":"ICN1",
  "adjudication_date":"2026-04-20","remittance":{"payer_id":"PAYER-A","trace_number":"T1","file_hash":"h1","payment_date":"2026-04-20"},
  "lines":[{"line_no":1,"procedure_code":"99214","submitted":"180.00","paid":"98.50","allowed":"128.50",
            "adjustments":[{"group":"CO","reason":"45","amount":"51.50"},{"group":"PR","reason":"3","amount":"30.00"}]}]}'; echo
STATUS=$(curl -sf -H "$BILLER" "$L/encounters/$E/claims/C-0001" | field '["status"]')
echo "claim C-0001: $STATUS"                                   # paid
curl -sf -H "$BILLER" "$L/encounters/$E?as_of_version=2"; echo     # the encounter as it was
curl -sf -H "$BILLER" "$L/encounters/$E/history" | field '["events"][-1]["type"]'
test "$STATUS" = paid
