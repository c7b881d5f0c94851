package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	gwtypes "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"gatehouse.dev/gatehouse/functions"
)

// awsConfig is an AWS SDK configuration for a node's AWS API, signing with key.
func awsConfig(key, secret string) aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, nil
		}),
	}
}

// awsNode starts a node with its AWS API on a free port and returns it with the access key `up` made
// for it on this first start.
func awsNode(t *testing.T, stack string) (*Node, aws.Config, string) {
	t.Helper()
	data := newDataDir(t)
	n := startNode(t, stack, data, func(o *Options) { o.AWSAddr = "127.0.0.1:0" })
	t.Cleanup(func() { n.Stop(context.Background()) })
	raw, err := os.ReadFile(filepath.Join(data, awsKeyFile))
	if err != nil {
		t.Fatalf("the access key made on the first start: %v", err)
	}
	var key struct{ AccessKeyID, SecretAccessKey string }
	if err := json.Unmarshal(raw, &key); err != nil {
		t.Fatal(err)
	}
	return n, awsConfig(key.AccessKeyID, key.SecretAccessKey), key.AccessKeyID
}

// pyFunction makes a python3.11 function of one file through the Lambda API.
func pyFunction(t *testing.T, lc *lambda.Client, name, file, handler, source string) *lambda.CreateFunctionOutput {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	zip, err := functions.ZipPackage(dir)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := lc.CreateFunction(context.Background(), &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: types.Runtime("python3.11"),
		Handler: aws.String(handler), Role: aws.String("arn:aws:iam::000000000000:role/lambda-ex"), Code: &types.FunctionCode{ZipFile: zip}})
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	return fn
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestAWSLambdaAPI drives the Lambda API with the AWS SDK for Go v2, as a user with the AWS CLI's
// habits would: create a Python function from a zip, read it back, list it, invoke it (and fail it),
// update its code, delete it; and STS's GetCallerIdentity. Bad signatures get AWS's error codes.
func TestAWSLambdaAPI(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the test deploys a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	n, cfg, keyID := awsNode(t, filepath.Join("testdata", "stack.yaml"))
	endpoint := "http://" + n.AWSAddr()
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(endpoint) })
	sc := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint) })
	ctx := context.Background()

	who, err := sc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(who.Account) != "000000000000" || aws.ToString(who.UserId) != keyID {
		t.Fatalf("GetCallerIdentity: %+v %v", who, err)
	}

	// The role AWS's tutorials make first: stored and returned, not enforced.
	ic := iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(endpoint) })
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	made, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("lambda-ex"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil || aws.ToString(made.Role.Arn) != "arn:aws:iam::000000000000:role/lambda-ex" {
		t.Fatalf("CreateRole: %+v %v", made, err)
	}
	if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("lambda-ex"), AssumeRolePolicyDocument: aws.String(trust)}); errorCode(err) != "EntityAlreadyExists" {
		t.Errorf("CreateRole again: %v, want EntityAlreadyExists", err)
	}
	basic := aws.String("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
	if _, err := ic.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("lambda-ex"), PolicyArn: basic}); err != nil {
		t.Fatalf("AttachRolePolicy: %v", err)
	}
	if got, err := ic.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("lambda-ex")}); err != nil || !strings.Contains(aws.ToString(got.Role.AssumeRolePolicyDocument), "lambda.amazonaws.com") {
		t.Errorf("GetRole: %+v %v", got, err)
	}
	if att, err := ic.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("lambda-ex")}); err != nil ||
		len(att.AttachedPolicies) != 1 || aws.ToString(att.AttachedPolicies[0].PolicyName) != "AWSLambdaBasicExecutionRole" {
		t.Errorf("ListAttachedRolePolicies: %+v %v", att, err)
	}
	if _, err := ic.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("lambda-ex")}); errorCode(err) != "DeleteConflict" {
		t.Errorf("DeleteRole with a policy attached: %v, want DeleteConflict", err)
	}

	pkg := func(body string) []byte {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		zip, err := functions.ZipPackage(dir)
		if err != nil {
			t.Fatal(err)
		}
		return zip
	}
	v1 := pkg("import os\n\ndef handler(event, context):\n    if event.get('fail'):\n        raise ValueError('asked to fail')\n    return {'hello': event.get('name'), 'greeting': os.environ['GREETING'], 'v': 1}\n")
	created, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("greeter"), Runtime: types.Runtime("python3.11"), Handler: aws.String("app.handler"),
		Role: aws.String("arn:aws:iam::000000000000:role/lambda-role"), Code: &types.FunctionCode{ZipFile: v1},
		Timeout: aws.Int32(5), MemorySize: aws.Int32(256), Description: aws.String("made with the SDK"),
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "hi"}},
	})
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	if aws.ToString(created.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:greeter" || created.Runtime != "python3.11" ||
		aws.ToInt32(created.MemorySize) != 256 || aws.ToInt32(created.Timeout) != 5 || created.State != types.StateActive {
		t.Errorf("CreateFunction answered %+v", created)
	}
	role := aws.String("arn:aws:iam::000000000000:role/lambda-role")
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("greeter"), Runtime: types.Runtime("python3.11"),
		Handler: aws.String("app.handler"), Role: role, Code: &types.FunctionCode{ZipFile: v1}}); errorCode(err) != "ResourceConflictException" {
		t.Errorf("CreateFunction of an existing name: %v, want ResourceConflictException", err)
	}
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("javafn"), Runtime: types.RuntimeJava21,
		Handler: aws.String("x.Y"), Role: role, Code: &types.FunctionCode{ZipFile: v1}}); errorCode(err) != "InvalidParameterValueException" || !strings.Contains(err.Error(), "java21") {
		t.Errorf("CreateFunction with java21: %v, want InvalidParameterValueException naming it", err)
	}

	got, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("greeter")})
	if err != nil || aws.ToString(got.Configuration.Handler) != "app.handler" || got.Configuration.Environment.Variables["GREETING"] != "hi" ||
		aws.ToString(got.Configuration.Description) != "made with the SDK" {
		t.Fatalf("GetFunction: %+v %v", got, err)
	}
	list, err := lc.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range list.Functions {
		found = found || aws.ToString(f.FunctionName) == "greeter"
	}
	if !found {
		t.Errorf("ListFunctions does not list greeter: %d functions", len(list.Functions))
	}

	out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("greeter"), Payload: []byte(`{"name":"ana"}`)})
	if err != nil || out.StatusCode != 200 || out.FunctionError != nil || aws.ToString(out.ExecutedVersion) != "1" {
		t.Fatalf("Invoke: %+v %v", out, err)
	}
	if string(out.Payload) != `{"hello": "ana", "greeting": "hi", "v": 1}` {
		t.Errorf("Invoke's payload: %s", out.Payload)
	}
	out, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("greeter"), Payload: []byte(`{"fail":true}`), LogType: types.LogTypeTail})
	if err != nil || aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), `"errorType": "ValueError"`) &&
		!strings.Contains(string(out.Payload), `"errorType":"ValueError"`) {
		t.Errorf("Invoke of a failing call: %+v (%s) %v", out, out.Payload, err)
	}
	// LogType Tail: the call's own log, as Lambda's tail reads.
	tail, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil || !strings.HasPrefix(string(tail), "START RequestId: ") || !strings.Contains(string(tail), "ValueError: asked to fail") ||
		!strings.Contains(string(tail), "\nREPORT RequestId: ") {
		t.Errorf("the log tail of a failing call: %q %v", tail, err)
	}
	if out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("greeter"), InvocationType: types.InvocationTypeDryRun}); err != nil || out.StatusCode != 204 {
		t.Errorf("Invoke DryRun: %+v %v", out, err)
	}
	if out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("greeter"), InvocationType: types.InvocationTypeEvent}); err != nil || out.StatusCode != 202 {
		t.Errorf("Invoke Event: %+v %v, want 202 (queued)", out, err)
	}

	// The function's log, through CloudWatch Logs: its group, a stream, and the failure found by a
	// filter pattern (the log reaches the stream a moment after the call).
	cw := cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	groups, err := cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/lambda/gree")})
	if err != nil || len(groups.LogGroups) != 1 || aws.ToString(groups.LogGroups[0].LogGroupName) != "/aws/lambda/greeter" {
		t.Fatalf("DescribeLogGroups: %+v %v", groups, err)
	}
	var failure *cwtypes.FilteredLogEvent
	waitUntil(t, "the failure reaches the function's log", func() bool {
		ev, err := cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/greeter"),
			FilterPattern: aws.String(`"ValueError: asked to fail"`)})
		if err != nil {
			t.Fatalf("FilterLogEvents: %v", err)
		}
		if len(ev.Events) > 0 {
			failure = &ev.Events[0]
		}
		return failure != nil
	})
	streams, err := cw.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/greeter")})
	if err != nil || len(streams.LogStreams) == 0 {
		t.Fatalf("DescribeLogStreams: %+v %v", streams, err)
	}
	events, err := cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/aws/lambda/greeter"), LogStreamName: failure.LogStreamName})
	if err != nil || len(events.Events) == 0 {
		t.Errorf("GetLogEvents of %s: %+v %v", aws.ToString(failure.LogStreamName), events, err)
	}
	// Page by page, one event a page, the SDK's paginator walks the same events as one call, each
	// with an id of its own (what `aws logs tail --follow` tells records apart by).
	all, err := cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/greeter")})
	if err != nil || len(all.Events) < 2 || all.NextToken != nil {
		t.Fatalf("FilterLogEvents: %d events, %v", len(all.Events), err)
	}
	var paged []string
	ids := map[string]bool{}
	pager := cloudwatchlogs.NewFilterLogEventsPaginator(cw, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/greeter"), Limit: aws.Int32(1)})
	for pager.HasMorePages() && len(paged) <= len(all.Events) {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("FilterLogEvents page: %v", err)
		}
		for _, e := range page.Events {
			paged = append(paged, aws.ToString(e.Message))
			ids[aws.ToString(e.EventId)] = true
		}
	}
	if len(paged) < len(all.Events) || len(ids) != len(paged) {
		t.Errorf("paged FilterLogEvents: %d events with %d ids, want at least the %d of one call, each with its own id", len(paged), len(ids), len(all.Events))
	}
	for i, e := range all.Events {
		if paged[i] != aws.ToString(e.Message) {
			t.Fatalf("paged event %d is %q, want %q", i, paged[i], aws.ToString(e.Message))
		}
	}
	if _, err := cw.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/nope")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("DescribeLogStreams of a group that does not exist: %v", err)
	}
	// A log group of its own, as the HTTP API tutorial makes one for access logs.
	if _, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("my-http-api-logs")}); err != nil {
		t.Fatalf("CreateLogGroup: %v", err)
	}
	if _, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("my-http-api-logs")}); errorCode(err) != "ResourceAlreadyExistsException" {
		t.Errorf("CreateLogGroup again: %v", err)
	}
	if _, err := cw.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("my-http-api-logs"), RetentionInDays: aws.Int32(7)}); err != nil {
		t.Errorf("PutRetentionPolicy: %v", err)
	}
	if g, err := cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("my-http")}); err != nil ||
		len(g.LogGroups) != 1 || aws.ToInt32(g.LogGroups[0].RetentionInDays) != 7 {
		t.Errorf("DescribeLogGroups of the group made: %+v %v", g, err)
	}
	if _, err := cw.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("my-http-api-logs")}); err != nil {
		t.Errorf("DeleteLogGroup: %v", err)
	}
	if g, err := cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("my-http")}); err != nil || len(g.LogGroups) != 0 {
		t.Errorf("DescribeLogGroups after DeleteLogGroup: %+v %v", g, err)
	}
	if _, err := cw.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("/aws/lambda/greeter"), LogStreamName: aws.String("x"),
		LogEvents: []cwtypes.InputLogEvent{{Message: aws.String("m"), Timestamp: aws.Int64(1)}}}); errorCode(err) != "UnknownOperationException" {
		t.Errorf("PutLogEvents: %v, want UnknownOperationException", err)
	}

	// New code, same configuration.
	up, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("greeter"),
		ZipFile: pkg("def handler(event, context):\n    return {'v': 2}\n")})
	if err != nil || aws.ToInt32(up.MemorySize) != 256 {
		t.Fatalf("UpdateFunctionCode: %+v %v", up, err)
	}
	if out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("greeter")}); err != nil || string(out.Payload) != `{"v": 2}` || aws.ToString(out.ExecutedVersion) != "2" {
		t.Errorf("Invoke after UpdateFunctionCode: %s %v", out.Payload, err)
	}
	// The function is the node's like any other: the admin API sees both versions.
	if out := runCLI(t, n, "versions", "greeter"); !strings.Contains(out, "\n2 ") {
		t.Errorf("gatehouse versions greeter:\n%s", out)
	}

	// A new configuration is a new version with the same code; PublishVersion names the newest.
	cfgd, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("greeter"), MemorySize: aws.Int32(512)})
	if err != nil || aws.ToInt32(cfgd.MemorySize) != 512 || aws.ToInt32(cfgd.Timeout) != 5 {
		t.Fatalf("UpdateFunctionConfiguration: %+v %v", cfgd, err)
	}
	pub, err := lc.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("greeter")})
	if err != nil || aws.ToString(pub.Version) != "3" || aws.ToString(pub.CodeSha256) != aws.ToString(up.CodeSha256) {
		t.Fatalf("PublishVersion: %+v %v", pub, err)
	}
	vers, err := lc.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("greeter")})
	var labels []string
	for _, v := range vers.Versions {
		labels = append(labels, aws.ToString(v.Version))
	}
	if err != nil || strings.Join(labels, " ") != "$LATEST 1 2 3" {
		t.Errorf("ListVersionsByFunction: %v %v", labels, err)
	}

	// Reserved concurrency is maxConcurrency: set, read, removed (each a version with the same code).
	if out, err := lc.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("greeter"),
		ReservedConcurrentExecutions: aws.Int32(7)}); err != nil || aws.ToInt32(out.ReservedConcurrentExecutions) != 7 {
		t.Fatalf("PutFunctionConcurrency: %+v %v", out, err)
	}
	if out, err := lc.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("greeter")}); err != nil || aws.ToInt32(out.ReservedConcurrentExecutions) != 7 {
		t.Errorf("GetFunctionConcurrency: %+v %v", out, err)
	}
	if _, err := lc.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("greeter")}); err != nil {
		t.Fatalf("DeleteFunctionConcurrency: %v", err)
	}
	if out, err := lc.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("greeter")}); err != nil || out.ReservedConcurrentExecutions != nil {
		t.Errorf("GetFunctionConcurrency after delete: %+v %v", out, err)
	}

	// An alias on version 1 that sends half of its calls to version 2, then moved to version 5 (the
	// concurrency changes made 4 and 5).
	alias, err := lc.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("greeter"), Name: aws.String("live"),
		FunctionVersion: aws.String("1"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.5}}})
	if err != nil || aws.ToString(alias.AliasArn) != "arn:aws:lambda:us-east-1:000000000000:function:greeter:live" {
		t.Fatalf("CreateAlias: %+v %v", alias, err)
	}
	ran := map[string]int{}
	for range 40 {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("greeter"), Qualifier: aws.String("live"), Payload: []byte(`{"name":"x"}`)})
		if err != nil {
			t.Fatal(err)
		}
		ran[aws.ToString(out.ExecutedVersion)]++
	}
	// Each side has a 2^-40 chance of none of 40 calls.
	if ran["1"] == 0 || ran["2"] == 0 || ran["1"]+ran["2"] != 40 {
		t.Errorf("40 calls of greeter:live, 1 with 50%% to 2, ran %v", ran)
	}
	if _, err := lc.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("greeter"), Name: aws.String("live"),
		FunctionVersion: aws.String("5"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{}}}); err != nil {
		t.Fatalf("UpdateAlias: %v", err)
	}
	if out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("greeter:live")}); err != nil || aws.ToString(out.ExecutedVersion) != "5" {
		t.Errorf("Invoke greeter:live after UpdateAlias: %+v %v", out, err)
	}
	if list, err := lc.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("greeter")}); err != nil || len(list.Aliases) != 1 ||
		aws.ToString(list.Aliases[0].FunctionVersion) != "5" || list.Aliases[0].RoutingConfig != nil {
		t.Errorf("ListAliases: %+v %v", list, err)
	}
	if _, err := lc.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("greeter"), Name: aws.String("live")}); err != nil {
		t.Fatalf("DeleteAlias: %v", err)
	}
	if _, err := lc.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("greeter"), Name: aws.String("live")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("GetAlias after DeleteAlias: %v", err)
	}

	// A resource-based policy: stored and shown, not enforced.
	perm := &lambda.AddPermissionInput{FunctionName: aws.String("greeter"), StatementId: aws.String("apigateway-invoke"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("apigateway.amazonaws.com"),
		SourceArn: aws.String("arn:aws:execute-api:us-east-1:000000000000:abc123/*")}
	if out, err := lc.AddPermission(ctx, perm); err != nil || !strings.Contains(aws.ToString(out.Statement), `"Service":"apigateway.amazonaws.com"`) {
		t.Fatalf("AddPermission: %+v %v", out, err)
	}
	if _, err := lc.AddPermission(ctx, perm); errorCode(err) != "ResourceConflictException" {
		t.Errorf("AddPermission of a statement id in use: %v", err)
	}
	if pol, err := lc.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("greeter")}); err != nil ||
		!strings.Contains(aws.ToString(pol.Policy), `"Sid":"apigateway-invoke"`) || !strings.Contains(aws.ToString(pol.Policy), "abc123") {
		t.Errorf("GetPolicy: %+v %v", pol, err)
	}
	if _, err := lc.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("greeter"), StatementId: aws.String("apigateway-invoke")}); err != nil {
		t.Fatalf("RemovePermission: %v", err)
	}
	if _, err := lc.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("greeter")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("GetPolicy with no statement left: %v", err)
	}

	// The role goes last, as in the tutorial's clean-up.
	if _, err := ic.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("lambda-ex"), PolicyArn: basic}); err != nil {
		t.Errorf("DetachRolePolicy: %v", err)
	}
	if _, err := ic.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("lambda-ex")}); err != nil {
		t.Errorf("DeleteRole: %v", err)
	}
	if _, err := ic.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("lambda-ex")}); errorCode(err) != "NoSuchEntity" {
		t.Errorf("GetRole after DeleteRole: %v, want NoSuchEntity", err)
	}

	if _, err := lc.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("greeter")}); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("greeter")}); !errors.As(err, &nf) {
		t.Errorf("GetFunction after DeleteFunction: %v, want ResourceNotFoundException", err)
	}
	if _, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("greeter")}); !errors.As(err, &nf) {
		t.Errorf("Invoke after DeleteFunction: %v, want ResourceNotFoundException", err)
	}

	// Signatures: a wrong secret, a key the stack does not have, none at all; and an operation this
	// Gatehouse does not serve.
	for _, c := range []struct {
		cfg  aws.Config
		want string
	}{
		{awsConfig(keyID, "not-the-secret-0000000000000000000000000"), "InvalidSignatureException"},
		{awsConfig("AKIANOSUCHKEY0000000", "x-0000000000000000000000000000000000000"), "UnrecognizedClientException"},
	} {
		client := lambda.NewFromConfig(c.cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(endpoint) })
		if _, err := client.ListFunctions(ctx, &lambda.ListFunctionsInput{}); errorCode(err) != c.want {
			t.Errorf("ListFunctions: %v, want %s", err, c.want)
		}
	}
	if _, err := sts.NewFromConfig(awsConfig(keyID, "not-the-secret-0000000000000000000000000"), func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint) }).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); errorCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("GetCallerIdentity with a wrong secret: %v, want SignatureDoesNotMatch", err)
	}
	// A request signed 10 minutes ago is outside the 5-minute window.
	old, _ := http.NewRequest("GET", endpoint+"/2015-03-31/functions/", nil)
	creds, _ := cfg.Credentials.Retrieve(ctx)
	emptyHash := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if err := v4.NewSigner().SignHTTP(ctx, creds, old, emptyHash, "lambda", "us-east-1", time.Now().Add(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(old); err != nil || resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") != "InvalidSignatureException" {
		t.Errorf("a request signed 10 minutes ago: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err := http.Get(endpoint + "/2015-03-31/functions/")
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" {
		t.Errorf("an unsigned request: %v %v", resp, err)
	}
	if _, err := lc.ListLayers(ctx, &lambda.ListLayersInput{}); errorCode(err) != "UnknownOperationException" || !strings.Contains(err.Error(), "layers") {
		t.Errorf("ListLayers: %v, want UnknownOperationException naming it", err)
	}
}

// TestAWSHTTPAPITutorial follows AWS's getting-started tutorial for an HTTP API with the SDK: a
// function, an API, an AWS_PROXY integration to it, a route, a stage with auto-deploy; the route
// answers at the API's endpoint under the stage, the routes read back, and once the API is deleted
// its endpoint answers 404.
func TestAWSHTTPAPITutorial(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the test deploys a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	// A stack with no catch-all route, so that a path no API serves is a 404.
	n, cfg, _ := awsNode(t, filepath.Join("..", "..", "samples", "py-hello", "gatehouse.yaml"))
	endpoint := aws.String("http://" + n.AWSAddr())
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = endpoint })
	gw := apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) { o.BaseEndpoint = endpoint })
	ctx := context.Background()

	fn := pyFunction(t, lc, "my-function", "lambda_function.py", "lambda_function.lambda_handler", "import json\n\ndef lambda_handler(event, context):\n    return {'statusCode': 200, 'body': json.dumps({'message': 'Hello from Lambda!', 'path': event['rawPath'], 'stage': event['requestContext']['stage']})}\n")

	api, err := gw.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("my-http-api"), ProtocolType: gwtypes.ProtocolTypeHttp})
	if err != nil || len(aws.ToString(api.ApiId)) != 10 || !strings.HasPrefix(aws.ToString(api.ApiEndpoint), "http://"+n.GatewayAddr()+"/") {
		t.Fatalf("CreateApi: %+v %v", api, err)
	}
	integ, err := gw.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: api.ApiId, IntegrationType: gwtypes.IntegrationTypeAwsProxy,
		IntegrationUri: fn.FunctionArn, PayloadFormatVersion: aws.String("2.0")})
	if err != nil {
		t.Fatalf("CreateIntegration: %v", err)
	}
	route, err := gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("GET /hello"),
		Target: aws.String("integrations/" + aws.ToString(integ.IntegrationId))})
	if err != nil {
		t.Fatalf("CreateRoute: %v", err)
	}
	if _, err := gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("GET /hello")}); errorCode(err) != "ConflictException" {
		t.Errorf("CreateRoute of a key in use: %v, want ConflictException", err)
	}
	start := time.Now()
	if _, err := gw.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true)}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	// Served when CreateStage answers: the first request gets the route.
	r := do(t, newRequest(t, "GET", aws.ToString(api.ApiEndpoint)+"/prod/hello", nil))
	t.Logf("CreateStage --auto-deploy to the first 200: %s", time.Since(start).Round(time.Millisecond))
	if r.status != 200 || !strings.Contains(string(r.body), `"message": "Hello from Lambda!"`) || !strings.Contains(string(r.body), `"stage": "prod"`) {
		t.Fatalf("GET $ApiEndpoint/prod/hello: %d %s", r.status, r.body)
	}
	// CORS, set with UpdateApi, is the gateway's to answer: a preflight from the allowed origin.
	if _, err := gw.UpdateApi(ctx, &apigatewayv2.UpdateApiInput{ApiId: api.ApiId, CorsConfiguration: &gwtypes.Cors{
		AllowOrigins: []string{"https://example.com"}, AllowMethods: []string{"GET"}}}); err != nil {
		t.Fatalf("UpdateApi with CorsConfiguration: %v", err)
	}
	pre := newRequest(t, "OPTIONS", aws.ToString(api.ApiEndpoint)+"/prod/hello", nil)
	pre.Header.Set("Origin", "https://example.com")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	if r := do(t, pre); r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://example.com" {
		t.Errorf("a CORS preflight: %d %v", r.status, r.header)
	}
	// A Lambda (REQUEST) authorizer in Python guards the route once the route names it.
	authzFn := pyFunction(t, lc, "authz", "authz.py", "authz.handler", "def handler(event, context):\n    return {'isAuthorized': event['headers'].get('x-token') == 'let-me-in'}\n")
	authorizer, err := gw.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{ApiId: api.ApiId, Name: aws.String("gate"),
		AuthorizerType: gwtypes.AuthorizerTypeRequest, AuthorizerUri: authzFn.FunctionArn, IdentitySource: []string{"$request.header.X-Token"},
		AuthorizerPayloadFormatVersion: aws.String("2.0"), EnableSimpleResponses: aws.Bool(true)})
	if err != nil {
		t.Fatalf("CreateAuthorizer: %v", err)
	}
	if _, err := gw.UpdateRoute(ctx, &apigatewayv2.UpdateRouteInput{ApiId: api.ApiId, RouteId: route.RouteId,
		AuthorizationType: gwtypes.AuthorizationTypeCustom, AuthorizerId: authorizer.AuthorizerId}); err != nil {
		t.Fatalf("UpdateRoute with the authorizer: %v", err)
	}
	if r := do(t, newRequest(t, "GET", aws.ToString(api.ApiEndpoint)+"/prod/hello", nil)); r.status != 401 {
		t.Errorf("GET without the identity source: %d %s, want 401", r.status, r.body)
	}
	in := newRequest(t, "GET", aws.ToString(api.ApiEndpoint)+"/prod/hello", nil)
	in.Header.Set("X-Token", "let-me-in")
	if r := do(t, in); r.status != 200 {
		t.Errorf("GET with the token: %d %s", r.status, r.body)
	}

	// A JWT authorizer reads back as it was made, and a route that uses it refuses a request with no
	// token (401) before any key is fetched.
	jwtAuth, err := gw.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{ApiId: api.ApiId, Name: aws.String("corp"),
		AuthorizerType: gwtypes.AuthorizerTypeJwt, IdentitySource: []string{"$request.header.Authorization"},
		JwtConfiguration: &gwtypes.JWTConfiguration{Issuer: aws.String("http://127.0.0.1:9/issuer"), Audience: []string{"api://shop"}}})
	if err != nil {
		t.Fatalf("CreateAuthorizer JWT: %v", err)
	}
	if got, err := gw.GetAuthorizer(ctx, &apigatewayv2.GetAuthorizerInput{ApiId: api.ApiId, AuthorizerId: jwtAuth.AuthorizerId}); err != nil ||
		aws.ToString(got.JwtConfiguration.Issuer) != "http://127.0.0.1:9/issuer" || got.JwtConfiguration.Audience[0] != "api://shop" {
		t.Errorf("GetAuthorizer: %+v %v", got, err)
	}
	jwtRoute, err := gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("GET /orders"),
		Target: aws.String("integrations/" + aws.ToString(integ.IntegrationId)), AuthorizationType: gwtypes.AuthorizationTypeJwt,
		AuthorizerId: jwtAuth.AuthorizerId, AuthorizationScopes: []string{"orders:read"}})
	if err != nil {
		t.Fatalf("CreateRoute with JWT: %v", err)
	}
	if r := do(t, newRequest(t, "GET", aws.ToString(api.ApiEndpoint)+"/prod/orders", nil)); r.status != 401 {
		t.Errorf("GET a JWT route with no token: %d %s, want 401", r.status, r.body)
	}
	if _, err := gw.DeleteRoute(ctx, &apigatewayv2.DeleteRouteInput{ApiId: api.ApiId, RouteId: jwtRoute.RouteId}); err != nil {
		t.Fatalf("DeleteRoute: %v", err)
	}

	routes, err := gw.GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: api.ApiId})
	if err != nil || len(routes.Items) != 1 || aws.ToString(routes.Items[0].RouteKey) != "GET /hello" ||
		aws.ToString(routes.Items[0].Target) != "integrations/"+aws.ToString(integ.IntegrationId) {
		t.Errorf("GetRoutes: %+v %v", routes, err)
	}
	// GetApis lists it, and the stack file's API too.
	apis, err := gw.GetApis(ctx, &apigatewayv2.GetApisInput{})
	var names []string
	for _, a := range apis.Items {
		names = append(names, aws.ToString(a.Name))
	}
	if err != nil || strings.Join(names, " ") != "my-http-api web" {
		t.Errorf("GetApis: %v %v", names, err)
	}
	// The API is the node's like a stack file's: the admin API lists it.
	if out := runCLI(t, n, "apis", "ls"); !strings.Contains(out, "aws-my-http-api-") {
		t.Errorf("gatehouse apis ls:\n%s", out)
	}
	// A route to a function that does not exist is refused with the stack file's own reason.
	bad, err := gw.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: api.ApiId, IntegrationType: gwtypes.IntegrationTypeAwsProxy,
		IntegrationUri: aws.String("arn:aws:lambda:us-east-1:000000000000:function:nope")})
	if err != nil {
		t.Fatalf("CreateIntegration (not yet routed): %v", err)
	}
	if _, err := gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("GET /nope"),
		Target: aws.String("integrations/" + aws.ToString(bad.IntegrationId))}); errorCode(err) != "BadRequestException" || !strings.Contains(err.Error(), "nope") {
		t.Errorf("CreateRoute to a function that does not exist: %v, want BadRequestException naming it", err)
	}
	// Stage throttles are DefaultRouteSettings: at 0.01 request per second with a burst of 1, the
	// second request in a row is refused (the next token is 100 s away).
	if _, err := gw.UpdateStage(ctx, &apigatewayv2.UpdateStageInput{ApiId: api.ApiId, StageName: aws.String("prod"),
		DefaultRouteSettings: &gwtypes.RouteSettings{ThrottlingRateLimit: aws.Float64(0.01), ThrottlingBurstLimit: aws.Int32(1)}}); err != nil {
		t.Fatalf("UpdateStage with DefaultRouteSettings: %v", err)
	}
	var statuses []int
	for range 3 {
		req := newRequest(t, "GET", aws.ToString(api.ApiEndpoint)+"/prod/hello", nil)
		req.Header.Set("X-Token", "let-me-in")
		statuses = append(statuses, do(t, req).status)
	}
	if statuses[0] != 200 || statuses[1] != 429 || statuses[2] != 429 {
		t.Errorf("three requests under a 0.01/s, burst 1 throttle: %v, want 200 429 429", statuses)
	}
	if st, err := gw.GetStage(ctx, &apigatewayv2.GetStageInput{ApiId: api.ApiId, StageName: aws.String("prod")}); err != nil ||
		st.DefaultRouteSettings == nil || aws.ToInt32(st.DefaultRouteSettings.ThrottlingBurstLimit) != 1 {
		t.Errorf("GetStage: %+v %v", st, err)
	}

	// Exported to OpenAPI, the route keeps its integration.
	exported, err := gw.ExportApi(ctx, &apigatewayv2.ExportApiInput{ApiId: api.ApiId, Specification: aws.String("OAS30"),
		OutputType: aws.String("JSON"), StageName: aws.String("prod")})
	if err != nil || !strings.Contains(string(exported.Body), `"/hello"`) || !strings.Contains(string(exported.Body), "x-amazon-apigateway-integration") ||
		!strings.Contains(string(exported.Body), aws.ToString(fn.FunctionArn)) {
		t.Fatalf("ExportApi: %s %v", exported.Body, err)
	}
	if y, err := gw.ExportApi(ctx, &apigatewayv2.ExportApiInput{ApiId: api.ApiId, Specification: aws.String("OAS30"), OutputType: aws.String("YAML")}); err != nil ||
		!strings.Contains(string(y.Body), "openapi: 3.0.1") {
		t.Errorf("ExportApi YAML: %s %v", y.Body, err)
	}

	if _, err := gw.DeleteRoute(ctx, &apigatewayv2.DeleteRouteInput{ApiId: api.ApiId, RouteId: route.RouteId}); err != nil {
		t.Fatalf("DeleteRoute: %v", err)
	}
	if r := do(t, newRequest(t, "GET", aws.ToString(api.ApiEndpoint)+"/prod/hello", nil)); r.status != 404 {
		t.Errorf("GET after DeleteRoute: %d %s", r.status, r.body)
	}
	if _, err := gw.DeleteApi(ctx, &apigatewayv2.DeleteApiInput{ApiId: api.ApiId}); err != nil {
		t.Fatalf("DeleteApi: %v", err)
	}
	if _, err := gw.GetApi(ctx, &apigatewayv2.GetApiInput{ApiId: api.ApiId}); errorCode(err) != "NotFoundException" {
		t.Errorf("GetApi after DeleteApi: %v, want NotFoundException", err)
	}
	if out := runCLI(t, n, "apis", "ls"); strings.Contains(out, "aws-my-http-api-") {
		t.Errorf("gatehouse apis ls after DeleteApi:\n%s", out)
	}

	// Imported again from the export, with a stage, it answers as before: its route keeps its
	// function and its authorizer.
	imported, err := gw.ImportApi(ctx, &apigatewayv2.ImportApiInput{Body: aws.String(string(exported.Body))})
	if err != nil || aws.ToString(imported.Name) != "my-http-api" || aws.ToString(imported.ApiId) == aws.ToString(api.ApiId) {
		t.Fatalf("ImportApi: %+v %v", imported, err)
	}
	if _, err := gw.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: imported.ApiId, StageName: aws.String("prod")}); err != nil {
		t.Fatalf("CreateStage on the imported API: %v", err)
	}
	if r := do(t, newRequest(t, "GET", aws.ToString(imported.ApiEndpoint)+"/prod/hello", nil)); r.status != 401 {
		t.Errorf("GET the imported API without the token: %d %s, want 401 from its authorizer", r.status, r.body)
	}
	in = newRequest(t, "GET", aws.ToString(imported.ApiEndpoint)+"/prod/hello", nil)
	in.Header.Set("X-Token", "let-me-in")
	if r := do(t, in); r.status != 200 || !strings.Contains(string(r.body), "Hello from Lambda!") {
		t.Errorf("GET the imported API: %d %s", r.status, r.body)
	}
	if got, err := gw.GetAuthorizers(ctx, &apigatewayv2.GetAuthorizersInput{ApiId: imported.ApiId}); err != nil || len(got.Items) != 1 ||
		aws.ToString(got.Items[0].Name) != "gate" || got.Items[0].IdentitySource[0] != "$request.header.X-Token" {
		t.Errorf("GetAuthorizers of the imported API: %+v %v", got, err)
	}
	if _, err := gw.ImportApi(ctx, &apigatewayv2.ImportApiInput{Body: aws.String("openapi: 2.0\ninfo: {title: x}\n")}); errorCode(err) != "BadRequestException" {
		t.Errorf("ImportApi of a Swagger 2 document: %v, want BadRequestException", err)
	}
}

// TestAWSWebSocketAPI makes a WebSocket API through the AWS API and reaches it with a WebSocket
// client: its $connect route's function lets a client in or keeps it out.
func TestAWSWebSocketAPI(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the test deploys a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	n, cfg, _ := awsNode(t, filepath.Join("..", "..", "samples", "py-hello", "gatehouse.yaml"))
	endpoint := aws.String("http://" + n.AWSAddr())
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = endpoint })
	gw := apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) { o.BaseEndpoint = endpoint })
	ctx := context.Background()
	fn := pyFunction(t, lc, "ws-connect", "ws.py", "ws.handler", "def handler(event, context):\n    if event['requestContext']['routeKey'] != '$connect':\n        return {'statusCode': 200, 'body': 'echo: ' + (event.get('body') or '')}\n    q = event.get('queryStringParameters') or {}\n    return {'statusCode': 403 if q.get('deny') else 200}\n")
	api, err := gw.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("chat"), ProtocolType: gwtypes.ProtocolTypeWebsocket,
		RouteSelectionExpression: aws.String("$request.body.action")})
	if err != nil || !strings.HasPrefix(aws.ToString(api.ApiEndpoint), "ws://") {
		t.Fatalf("CreateApi WEBSOCKET: %+v %v", api, err)
	}
	integ, err := gw.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: api.ApiId, IntegrationType: gwtypes.IntegrationTypeAwsProxy, IntegrationUri: fn.FunctionArn})
	if err != nil {
		t.Fatalf("CreateIntegration: %v", err)
	}
	var defaultRoute *string
	for _, key := range []string{"$connect", "$default"} {
		rt, err := gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String(key),
			Target: aws.String("integrations/" + aws.ToString(integ.IntegrationId))})
		if err != nil {
			t.Fatalf("CreateRoute %s: %v", key, err)
		}
		defaultRoute = rt.RouteId
	}
	// The $default route answers its client: a route response.
	if _, err := gw.CreateRouteResponse(ctx, &apigatewayv2.CreateRouteResponseInput{ApiId: api.ApiId, RouteId: defaultRoute,
		RouteResponseKey: aws.String("$default")}); err != nil {
		t.Fatalf("CreateRouteResponse: %v", err)
	}
	if _, err := gw.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true)}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	path := "/" + aws.ToString(api.ApiId) + "/prod"
	c := wsDial(t, n, path, nil)
	wsSend(t, c, `{"action":"anything"}`)
	if _, got := wsRead(t, c); string(got) != `echo: {"action":"anything"}` {
		t.Errorf("the $default route's answer: %q", got)
	}
	c.Close()
	if _, resp, err := wsDialer.Dial("ws://"+n.GatewayAddr()+path+"?deny=1", nil); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("a client its $connect function denies: %v %v", resp, err)
	}
}
