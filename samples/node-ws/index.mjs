// A chat handler for a WebSocket API, written as for AWS Lambda: it answers the client that sent a
// message through the route response, and reaches other clients through the API's @connections
// endpoint with the AWS SDK for JavaScript v3, signed with the credentials the runtime gives it.
//
//   {"action": "whoami"}                               -> {"connectionId": "..."}
//   {"action": "sendmessage", "to": "ID", "data": "hi"} -> the client ID gets {"from": "...", "data": "hi"}
//                                                         and the sender {"sent": true} (or the error)
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";

// Where @connections is. On AWS it is https://{domainName}/{stage}; under Gatehouse, the gateway the
// runtime names and the API's mount (set in the stack file).
function endpoint(rc) {
  if (process.env.GATEHOUSE_GATEWAY_URL) {
    return process.env.GATEHOUSE_GATEWAY_URL + (process.env.CONNECTIONS_PATH || "");
  }
  return `https://${rc.domainName}/${rc.stage}`;
}

let client; // made once per process, reused while it is warm

export const handler = async (event) => {
  const rc = event.requestContext;
  const reply = (body) => ({ statusCode: 200, body: JSON.stringify(body) });
  switch (rc.routeKey) {
    case "$connect":
    case "$disconnect":
      return { statusCode: 200 };
    case "whoami":
      return reply({ connectionId: rc.connectionId });
    case "sendmessage": {
      let msg;
      try {
        msg = JSON.parse(event.body);
      } catch {
        return reply({ error: "the message is not JSON" });
      }
      client ??= new ApiGatewayManagementApiClient({ endpoint: endpoint(rc) });
      try {
        await client.send(new PostToConnectionCommand({
          ConnectionId: msg.to || rc.connectionId,
          Data: JSON.stringify({ from: rc.connectionId, data: msg.data }),
        }));
        return reply({ sent: true });
      } catch (err) {
        console.log(`posting to ${msg.to}: ${err.name}: ${err.message}`);
        return reply({ error: err.name });
      }
    }
    default:
      return reply({ error: `no route ${rc.routeKey}: send {"action": "whoami"} or {"action": "sendmessage", "to": ID, "data": ...}` });
  }
};
