package sam

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/testfix"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txtar")

// readTemplate writes the archive's files to a directory and reads its template.yaml as a stack:
// the stack as YAML (with the directory written $DIR), the notices, and the error, one of the two
// empty.
func readTemplate(t *testing.T, files []txtar.File, o Options) (stack, notices, problem string) {
	t.Helper()
	dir := testfix.WriteArchive(t, files)
	file := filepath.Join(dir, "template.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	o.StackName = "app"
	doc, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Read(file, doc, o)
	var s any
	if err == nil {
		var notes []string
		for _, n := range res.Notices {
			notes = append(notes, n.Error())
		}
		notices = strings.Join(notes, "\n")
		s, err = stackfile.ParseDoc(file, res.Stack, dir)
	}
	if err != nil {
		return "", notices, strings.ReplaceAll(err.Error(), dir, "$DIR")
	}
	return strings.ReplaceAll(testfix.YAML(t, s), dir, "$DIR"), strings.ReplaceAll(notices, dir, "$DIR"), ""
}

// TestGolden reads each testdata/*.txtar's template.yaml (with the function sources beside it) and
// compares the stack, notices or error with the archive's stack.yaml, notices and error.
func TestGolden(t *testing.T) {
	testfix.Golden(t, []string{"stack.yaml", "notices", "error"}, *update, func(t *testing.T, inputs []txtar.File) map[string]string {
		stack, notices, problem := readTemplate(t, inputs, Options{})
		return map[string]string{"stack.yaml": stack, "notices": notices, "error": problem}
	})
}

// TestParameterOverrides checks that --parameter-overrides change what the template's conditions
// and substitutions give, and that an unknown parameter or a value outside AllowedValues is refused.
func TestParameterOverrides(t *testing.T) {
	ar, err := txtar.ParseFile("testdata/http-api-jwt.txtar")
	if err != nil {
		t.Fatal(err)
	}
	var inputs []txtar.File
	for _, f := range ar.Files {
		if f.Name == "template.yaml" || strings.Contains(f.Name, "/") {
			inputs = append(inputs, f)
		}
	}
	stack, _, problem := readTemplate(t, inputs, Options{Parameters: map[string]string{"Stage": "prod"}})
	if problem != "" || !strings.Contains(stack, "LOG_LEVEL: WARN") || !strings.Contains(stack, "status-prod:") || !strings.Contains(stack, "TABLE: orders-prod") {
		t.Errorf("with Stage=prod: %s%s", stack, problem)
	}
	if _, _, problem := readTemplate(t, inputs, Options{Parameters: map[string]string{"Stage": "qa"}}); !strings.Contains(problem, `template.yaml:7:5: Parameters.Stage: parameter Stage is "qa", which is not one of its AllowedValues`) {
		t.Errorf("Stage=qa: %q", problem)
	}
	if _, _, problem := readTemplate(t, inputs, Options{Parameters: map[string]string{"Nope": "1"}}); !strings.Contains(problem, "--parameter-overrides names Nope, which is not a parameter of the template") {
		t.Errorf("Nope=1: %q", problem)
	}
}

// TestTemplateErrors checks that what cannot be served locally is refused at its place.
func TestTemplateErrors(t *testing.T) {
	const head = "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
	tests := []struct{ name, template, want string }{
		{"no resources", "AWSTemplateFormatVersion: '2010-09-09'\n", "t.yaml:1:1: the template has no Resources"},
		{"s3 code", head + "      CodeUri: {Bucket: b, Key: k}\n      Runtime: python3.11\n", "t.yaml:6:16: Resources.Fn.Properties.CodeUri: function Fn: code in S3 is not served locally: name a local directory or .zip"},
		{"inline code", head + "      InlineCode: print(1)\n      Runtime: python3.11\n", "t.yaml:6:19: Resources.Fn.Properties.InlineCode: function Fn: inline code is not served: put the code in a directory and name it in CodeUri"},
		{"image", head + "      PackageType: Image\n", "t.yaml:6:20: Resources.Fn.Properties.PackageType: function Fn: container images (PackageType: Image) are not served: Gatehouse runs zip packages"},
		{"import value", head + "      CodeUri: !ImportValue shared-code\n", "t.yaml:6:16: Resources.Fn.Properties.CodeUri: Fn::ImportValue needs a deployed AWS stack and is not evaluated locally: replace it with a value, or a parameter"},
		{"bad ref", head + "      CodeUri: !Ref Nowhere\n", "t.yaml:6:16: Resources.Fn.Properties.CodeUri: Ref Nowhere: no parameter or resource of that name in the template"},
		{"go1.x", head + "      CodeUri: .\n      Runtime: go1.x\n", "t.yaml:7:16: Resources.Fn.Properties.Runtime: function Fn: go1.x is retired on Lambda: build the handler as bootstrap for provided.al2023"},
		{"unknown tag", head + "      CodeUri: !Foo x\n", "t.yaml:6:16: Resources.Fn.Properties.CodeUri: the tag !Foo is not a CloudFormation intrinsic function"},
		{"no default", "Parameters:\n  Env: {Type: String}\nResources:\n  T: {Type: AWS::SNS::Topic}\n", "t.yaml:2:8: Parameters.Env: parameter Env has no Default: give it a value with --parameter-overrides Env=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("t.yaml", []byte(tt.template))
			if err == nil {
				_, err = Read("t.yaml", doc, Options{StackName: "t"})
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestPayloadFormatPlaced checks that an HttpApi event's payload format version Gatehouse does not
// know is refused at the event's key.
func TestPayloadFormatPlaced(t *testing.T) {
	files := []txtar.File{{Name: "template.yaml", Data: []byte("Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n" +
		"    Properties:\n      CodeUri: .\n      Runtime: python3.11\n      Handler: app.handler\n      Events:\n        Get:\n          Type: HttpApi\n" +
		"          Properties: {Path: /a, Method: GET, PayloadFormatVersion: '3.0'}\n")}}
	_, _, problem := readTemplate(t, files, Options{})
	if want := `$DIR/template.yaml:12:69: Resources.Fn.Properties.Events.Get.Properties.PayloadFormatVersion: unknown payload format version "3.0": want "2.0" or "1.0"`; problem != want {
		t.Errorf("got  %s\nwant %s", problem, want)
	}
}
