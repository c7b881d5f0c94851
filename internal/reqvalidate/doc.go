// Package reqvalidate checks requests to REST APIs as API Gateway's request validators do: the
// body against a model of the API, and the request parameters a method requires.
//
// # Models
//
// A model is a JSON Schema document, read as draft 4 when it does not name its draft with
// "$schema", as API Gateway reads models; a "$schema" naming draft 4, 6, 7, 2019-09 or 2020-12 is
// honoured. [Compile] compiles all of an API's models once, when its definition is loaded;
// [Models.ValidateBody] then checks a body per request without compiling anything again.
//
// A model may refer to a part of itself ("$ref": "#/definitions/Owner") and to another model of the
// same API by API Gateway's model URL,
// "https://apigateway.amazonaws.com/restapis/{id}/models/{name}", whatever the id. No other
// reference is followed: Gatehouse never reads a file or the network to compile a model, and a
// model that refers elsewhere is refused.
//
// # Parameters
//
// A method's required parameters are keyed as "querystring.NAME", "header.NAME" or "path.NAME"
// ([CheckParameterKey]); [MissingParameters] names those a request lacks, in the form API Gateway
// answers with.
//
// The package imports only the standard library and its JSON Schema validator,
// github.com/santhosh-tekuri/jsonschema/v6.
package reqvalidate
