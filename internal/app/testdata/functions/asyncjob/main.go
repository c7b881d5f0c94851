// Command asyncjob is a test function for asynchronous invocations and event sources. A batch of
// records is printed on one line, "BATCH body,body,…", and its records whose body is "fail" are
// reported failed. An event {"publish": {"subject": S, "data": D}} publishes D on S. An event {"fail": true} makes it
// fail, and one with "sleepMs" waits that long first (in an HTTP request's event, in its body); an
// invocation record (what a destination receives) is printed on one line, "RECORD {…}", so
// that a test finds it in the function's logs; any other event is answered {"done": EVENT}.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

func handle(ctx context.Context, event json.RawMessage) (json.RawMessage, error) {
	var batch struct {
		Records []struct {
			MessageID string `json:"messageId"`
			Body      string `json:"body"`
		} `json:"Records"`
	}
	if json.Unmarshal(event, &batch) == nil && batch.Records != nil {
		// An event source's batch: print its bodies, and report those that say "fail" failed.
		var bodies, failures []string
		for _, r := range batch.Records {
			bodies = append(bodies, r.Body)
			if r.Body == "fail" {
				failures = append(failures, `{"itemIdentifier":"`+r.MessageID+`"}`)
			}
		}
		fmt.Println("BATCH " + strings.Join(bodies, ","))
		return json.RawMessage(`{"batchItemFailures":[` + strings.Join(failures, ",") + `]}`), nil
	}
	var pub struct {
		Publish *struct{ Subject, Data string } `json:"publish"`
	}
	if json.Unmarshal(event, &pub) == nil && pub.Publish != nil {
		// Publish a message on the stack's event bus.
		if err := sdk.Publish(ctx, pub.Publish.Subject, []byte(pub.Publish.Data)); err != nil {
			return nil, err
		}
		return json.RawMessage(`"published"`), nil
	}
	var probe struct {
		Fail           bool            `json:"fail"`
		SleepMs        int             `json:"sleepMs"`
		RequestContext json.RawMessage `json:"requestContext"`
		Body           *string         `json:"body"`
		RouteKey       string          `json:"routeKey"`
	}
	_ = json.Unmarshal(event, &probe)
	if probe.RouteKey != "" && probe.Body != nil {
		// An HTTP request's event (a route with invocationType event): its body says what to do.
		var body struct {
			Fail    bool `json:"fail"`
			SleepMs int  `json:"sleepMs"`
		}
		_ = json.Unmarshal([]byte(*probe.Body), &body)
		probe.Fail, probe.SleepMs, probe.RequestContext = body.Fail, body.SleepMs, nil
	}
	time.Sleep(time.Duration(probe.SleepMs) * time.Millisecond)
	switch {
	case probe.Fail:
		return nil, errors.New("asked to fail")
	case probe.RequestContext != nil:
		var line bytes.Buffer
		if err := json.Compact(&line, event); err != nil {
			return nil, err
		}
		fmt.Println("RECORD " + line.String())
		return nil, nil
	}
	return json.RawMessage(`{"done":` + string(event) + `}`), nil
}

func main() { sdk.Start(handle) }
