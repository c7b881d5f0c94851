// Package gateway is Gatehouse's front door: a Fiber server that matches each HTTP request to an API (by
// host and mount path), a stage and a route with Amazon API Gateway's precedence, builds the payload
// format 2.0 event, invokes the route's function through an [Invoker], and maps the function's response
// (or the failure) back to HTTP, with API Gateway's status codes and JSON error bodies.
//
// The gateway never runs guest code itself, so a runaway function cannot stall it. Every response carries
// an apigw-requestid header equal to the event's requestContext.requestId.
package gateway
