package openapi

import (
	"os"
	"testing"

	"golang.org/x/tools/txtar"
)

func TestScratchDump(t *testing.T) {
	if os.Getenv("F") == "" {
		t.Skip()
	}
	ar, _ := txtar.ParseFile(os.Getenv("F"))
	api, im := importFile(t, ar.Files[0].Name, ar.Files[0].Data)
	out, err := Export(api, ExportOptions{Title: im.Name, Region: "us-east-1", AccountID: "000000000000", YAML: true, Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile("/tmp/oa/export.yaml", out, 0o644)
}
