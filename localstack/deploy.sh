#!/usr/bin/env bash
# Deploys the same CDK app to LocalStack (profile `localstack`) and smoke-tests the API it created.
#   npm run deploy:local            start compose, bootstrap, deploy, smoke test
#   MEMORYSYNC_SKIP_COMPOSE=1 ...   reuse containers that are already running
#   MEMORYSYNC_SKIP_SMOKE=1 ...     deploy only
# Credentials are forced to LocalStack's dummy ones so this can never deploy to a real account.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/.." && pwd)"
endpoint="${LOCALSTACK_ENDPOINT:-http://localhost:4566}"

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_REGION}"
export AWS_ENDPOINT_URL="${endpoint}"
# virtual-hosted S3 URLs for asset publishing: *.s3.localhost.localstack.cloud resolves to 127.0.0.1
export AWS_ENDPOINT_URL_S3="${AWS_ENDPOINT_URL_S3:-http://s3.localhost.localstack.cloud:4566}"
export CDK_DEFAULT_ACCOUNT=000000000000
export CDK_DEFAULT_REGION="${AWS_REGION}"

log() { printf 'deploy-local: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v curl >/dev/null || die "curl is required"
command -v node >/dev/null || die "node is required"

if [[ "${MEMORYSYNC_SKIP_COMPOSE:-0}" != "1" ]]; then
  command -v docker >/dev/null || die "docker is required (or start the services yourself and set MEMORYSYNC_SKIP_COMPOSE=1)"
  log "starting LocalStack, PostgreSQL (pgvector) and Redis"
  docker compose -f "${here}/docker-compose.yml" up -d --wait
fi

log "waiting for LocalStack at ${endpoint}"
ready=0
for _ in $(seq 1 60); do
  if health="$(curl -fsS "${endpoint}/_localstack/health" 2>/dev/null)" &&
    node -e 'const h = JSON.parse(process.argv[1]).services ?? {};
      const need = ["cloudformation","lambda","apigateway","sqs","s3","kms","secretsmanager","events","iam","sts","ssm","logs"];
      process.exit(need.every((s) => ["available","running"].includes(h[s])) ? 0 : 1);' "${health}"; then
    ready=1
    break
  fi
  sleep 2
done
[[ "${ready}" == "1" ]] || die "LocalStack did not become healthy at ${endpoint}"

cd "${root}"
context=(-c profile=localstack)
log "bootstrapping aws://${CDK_DEFAULT_ACCOUNT}/${AWS_REGION}"
npx cdk bootstrap "aws://${CDK_DEFAULT_ACCOUNT}/${AWS_REGION}" "${context[@]}"

outputs="${root}/cdk.out/localstack-outputs.json"
log "deploying"
npx cdk deploy --all "${context[@]}" --require-approval never --outputs-file "${outputs}"

api_id="$(node -e 'const o = require(process.argv[1]); const s = Object.values(o)[0] ?? {}; process.stdout.write(s.ApiId ?? "")' "${outputs}")"
stage="$(node -e 'const o = require(process.argv[1]); const s = Object.values(o)[0] ?? {}; process.stdout.write(s.ApiStage ?? "prod")' "${outputs}")"
[[ -n "${api_id}" ]] || die "no ApiId in ${outputs}"
api_url="${endpoint}/restapis/${api_id}/${stage}/_user_request_"
log "API: ${api_url}"

if [[ "${MEMORYSYNC_SKIP_SMOKE:-0}" != "1" ]]; then
  "${here}/smoke.sh" "${api_url}"
fi
