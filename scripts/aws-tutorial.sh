#!/usr/bin/env bash
# Runs AWS's getting-started steps for a Lambda function and an HTTP API with the aws CLI, unmodified
# but for --endpoint-url, against a local Gatehouse: a role, a function from a zip, invoked; an API
# with an integration, a route and an auto-deployed stage, called with curl; everything read back and
# deleted. Needs go, python3 and aws (Debian's awscli, or pip's) on PATH; .ci/run installs
# aws. Every step's answer is checked; the script fails at the first one that is wrong.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
gh_pid=
cleanup() {
  if [ -n "$gh_pid" ]; then kill -INT "$gh_pid" 2>/dev/null || true; wait "$gh_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "aws-tutorial: $*" >&2; [ -f "$work/up.log" ] && tail -20 "$work/up.log" >&2; exit 1; }

go build -o "$work/gatehouse" ./cmd/gatehouse
aws_addr=127.0.0.1:18466
"$work/gatehouse" up -f samples/py-hello/gatehouse.yaml --data "$work/data" \
  --addr 127.0.0.1:18480 --admin-addr 127.0.0.1:18481 --aws-addr "$aws_addr" >"$work/up.log" 2>&1 &
gh_pid=$!
for _ in $(seq 1 600); do
  grep -q "^aws: " "$work/up.log" && break
  kill -0 "$gh_pid" 2>/dev/null || fail "gatehouse up exited"
  sleep 0.1
done
grep -q "^aws: " "$work/up.log" || fail "gatehouse up did not start within 60 s"

# The access key up made on this first start, as its printed `aws configure` lines give it.
AWS_ACCESS_KEY_ID=$(awk '/aws configure set aws_access_key_id/ {print $NF}' "$work/up.log")
AWS_SECRET_ACCESS_KEY=$(awk '/aws configure set aws_secret_access_key/ {print $NF}' "$work/up.log")
[ -n "$AWS_ACCESS_KEY_ID" ] && [ -n "$AWS_SECRET_ACCESS_KEY" ] || fail "up printed no access key"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
export AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials"
aws() { command aws --endpoint-url "http://$aws_addr" --output json "$@"; }

aws sts get-caller-identity | grep -q '"Account": "000000000000"' || fail "sts get-caller-identity"

# The execution role the tutorial makes first (stored, not enforced).
aws iam create-role --role-name lambda-ex --assume-role-policy-document \
  '{"Version": "2012-10-17","Statement": [{ "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}' \
  | grep -q '"Arn": "arn:aws:iam::000000000000:role/lambda-ex"' || fail "iam create-role"
aws iam attach-role-policy --role-name lambda-ex --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole \
  || fail "iam attach-role-policy"

mkdir "$work/fn"
cat >"$work/fn/lambda_function.py" <<'PY'
import json

def lambda_handler(event, context):
    print("handling", event.get("name"))
    return {"statusCode": 200, "body": json.dumps({"message": "Hello from Lambda!", "name": event.get("name")})}
PY
(cd "$work/fn" && python3 -m zipfile -c "$work/function.zip" lambda_function.py)

aws lambda create-function --function-name my-function --runtime python3.11 --handler lambda_function.lambda_handler \
  --zip-file "fileb://$work/function.zip" --role arn:aws:iam::000000000000:role/lambda-ex >"$work/created.json" \
  || fail "lambda create-function"
grep -q '"FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:my-function"' "$work/created.json" || fail "create-function's answer: $(cat "$work/created.json")"

echo '{"name": "tutorial"}' >"$work/event.json"
aws lambda invoke --function-name my-function --payload "fileb://$work/event.json" "$work/response.json" >"$work/invoke.json" \
  || fail "lambda invoke"
grep -q '"StatusCode": 200' "$work/invoke.json" || fail "invoke's answer: $(cat "$work/invoke.json")"
grep -q 'Hello from Lambda!' "$work/response.json" && grep -q 'tutorial' "$work/response.json" || fail "the function's response: $(cat "$work/response.json")"

aws lambda list-functions | grep -q '"FunctionName": "my-function"' || fail "lambda list-functions"
aws lambda get-function --function-name my-function | grep -q '"Handler": "lambda_function.lambda_handler"' || fail "lambda get-function"
aws logs describe-log-groups --log-group-name-prefix /aws/lambda/my-function | grep -q '"/aws/lambda/my-function"' || fail "logs describe-log-groups"

# The function's log, as `aws logs tail` reads it (AWS CLI v2): what is there, then a new invocation's
# line while following.
if command aws logs tail help >/dev/null 2>&1; then
  aws logs tail /aws/lambda/my-function --since 10m | grep -q 'handling tutorial' || fail "logs tail: no 'handling tutorial' line"
  timeout 9 aws --endpoint-url "http://$aws_addr" logs tail /aws/lambda/my-function --since 10m --follow >"$work/follow.log" 2>&1 &
  follow_pid=$!
  sleep 2
  echo '{"name": "followed"}' >"$work/event2.json"
  aws lambda invoke --function-name my-function --payload "fileb://$work/event2.json" "$work/response2.json" >/dev/null || fail "lambda invoke"
  wait "$follow_pid" || true
  grep -q 'handling tutorial' "$work/follow.log" && grep -q 'handling followed' "$work/follow.log" \
    || fail "logs tail --follow did not show both invocations: $(cat "$work/follow.log")"
else
  echo "aws-tutorial: this aws CLI has no 'logs tail' (it is AWS CLI v2's); that step is skipped"
fi

# The HTTP API: a log group for its access logs, integration, route, stage with auto-deploy, then a
# request to its endpoint.
aws logs create-log-group --log-group-name my-http-api-logs || fail "logs create-log-group"
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
api_json=$(aws apigatewayv2 create-api --name my-http-api --protocol-type HTTP) || fail "apigatewayv2 create-api"
api_id=$(echo "$api_json" | json_field ApiId)
api_endpoint=$(echo "$api_json" | json_field ApiEndpoint)
fn_arn=$(python3 -c "import json; print(json.load(open('$work/created.json'))['FunctionArn'])")
integration_id=$(aws apigatewayv2 create-integration --api-id "$api_id" --integration-type AWS_PROXY \
  --integration-uri "$fn_arn" --payload-format-version 2.0 | json_field IntegrationId) || fail "apigatewayv2 create-integration"
aws apigatewayv2 create-route --api-id "$api_id" --route-key 'GET /hello' --target "integrations/$integration_id" >/dev/null \
  || fail "apigatewayv2 create-route"
log_format='$context.identity.sourceIp - - [$context.requestTime] "$context.httpMethod $context.routeKey $context.protocol" $context.status $context.responseLength $context.requestId'
aws apigatewayv2 create-stage --api-id "$api_id" --stage-name prod --auto-deploy \
  --access-log-settings "$(LOG_FORMAT="$log_format" python3 -c 'import json, os; print(json.dumps({"DestinationArn": "arn:aws:logs:us-east-1:000000000000:log-group:my-http-api-logs", "Format": os.environ["LOG_FORMAT"]}))')" >/dev/null \
  || fail "apigatewayv2 create-stage"
aws apigatewayv2 get-stage --api-id "$api_id" --stage-name prod | grep -q 'log-group:my-http-api-logs' || fail "apigatewayv2 get-stage: no access log settings"
curl -fsS "$api_endpoint/prod/hello" | grep -q 'Hello from Lambda!' || fail "curl \$ApiEndpoint/prod/hello"
# The stage's access log, in the log group its settings name.
for _ in $(seq 1 50); do
  aws logs filter-log-events --log-group-name my-http-api-logs | grep -q '\\"GET GET /hello HTTP/1.1\\" 200' && break
  sleep 0.1
done
aws logs filter-log-events --log-group-name my-http-api-logs | grep -q '\\"GET GET /hello HTTP/1.1\\" 200' \
  || fail "logs filter-log-events: no access log line for GET /hello: $(aws logs filter-log-events --log-group-name my-http-api-logs)"
aws apigatewayv2 get-routes --api-id "$api_id" | grep -q '"RouteKey": "GET /hello"' || fail "apigatewayv2 get-routes"
aws apigatewayv2 delete-api --api-id "$api_id" || fail "apigatewayv2 delete-api"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$api_endpoint/prod/hello")" = 404 ] || fail "the API still answers after delete-api"
aws logs delete-log-group --log-group-name my-http-api-logs || fail "logs delete-log-group"

aws lambda delete-function --function-name my-function >/dev/null || fail "lambda delete-function"
if aws lambda get-function --function-name my-function >"$work/gone.json" 2>&1; then fail "the function is still there after delete-function"; fi
grep -q ResourceNotFoundException "$work/gone.json" || fail "get-function after delete: $(cat "$work/gone.json")"
aws iam detach-role-policy --role-name lambda-ex --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole \
  || fail "iam detach-role-policy"
aws iam delete-role --role-name lambda-ex || fail "iam delete-role"
echo "aws-tutorial: every step answered as on AWS ($(command aws --version 2>&1 | cut -d' ' -f1))"
