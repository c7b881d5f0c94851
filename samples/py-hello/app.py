# The shape of the handler in AWS's getting-started tutorial for HTTP APIs, unchanged: Gatehouse runs
# it with the python3.x runtime through the Lambda Runtime API. GET /hello?name=you
import json


def lambda_handler(event, context):
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": f"Hello, {name}, from Python", "requestId": context.aws_request_id}),
    }
