package awsapi

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
)

// awsError is an AWS API error: its HTTP status, its code (the exception's name in SDKs) and message.
type awsError struct {
	Status  int
	Code    string
	Message string
}

func (e *awsError) Error() string { return e.Code + ": " + e.Message }

func errBadRequest(msg string) *awsError {
	return &awsError{Status: http.StatusBadRequest, Code: "InvalidParameterValueException", Message: msg}
}

// protocol writes a service's errors in its wire protocol.
type protocol interface {
	writeError(w http.ResponseWriter, e *awsError)
}

func protocolOf(service string) protocol {
	switch service {
	case "sts", "iam":
		return queryProtocol{}
	case "logs":
		return jsonProtocol{}
	}
	return restJSON{}
}

// restJSON is the REST-JSON protocol (lambda, apigatewayv2): the code in X-Amzn-ErrorType, and a
// JSON body with the message.
type restJSON struct{}

func (restJSON) writeError(w http.ResponseWriter, e *awsError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-ErrorType", e.Code)
	w.WriteHeader(e.Status)
	typ := "User"
	if e.Status >= 500 {
		typ = "Service"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": typ, "message": e.Message, "__type": e.Code})
}

// queryProtocol is the query protocol (sts, iam): XML answers, errors in an ErrorResponse.
type queryProtocol struct{}

// queryCodes are the query protocol's names for the signature errors.
var queryCodes = map[string]string{
	"UnrecognizedClientException":         "InvalidClientTokenId",
	"InvalidSignatureException":           "SignatureDoesNotMatch",
	"MissingAuthenticationTokenException": "MissingAuthenticationToken",
	"InvalidParameterValueException":      "InvalidParameterValue",
}

func (queryProtocol) writeError(w http.ResponseWriter, e *awsError) {
	code := e.Code
	if c, ok := queryCodes[code]; ok {
		code = c
	}
	type errorBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	body := struct {
		XMLName   xml.Name  `xml:"ErrorResponse"`
		Error     errorBody `xml:"Error"`
		RequestID string    `xml:"RequestId"`
	}{Error: errorBody{Type: "Sender", Code: code, Message: e.Message}, RequestID: newRequestID()}
	if e.Status >= 500 {
		body.Error.Type = "Receiver"
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	_ = xml.NewEncoder(w).Encode(body)
}
