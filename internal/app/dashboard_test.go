package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// TestGrafanaDashboard checks docs/grafana-dashboard.json against what a node exports: every
// query names metrics that exist, with labels they have. A metric the node has not exported yet
// (a counter that nothing has counted) must at least be one Gatehouse defines.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testfix.RepoRoot(), "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Type    string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Name, Query string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}

	n := sharedNode(t)
	for _, p := range []string{"/hello", "/nope"} {
		do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+p, nil))
	}
	// The labels of each metric the node exports.
	exported := map[string]map[string]bool{}
	sample := regexp.MustCompile(`^([a-z_:][a-z0-9_:]*)(?:\{([^}]*)\})? `)
	label := regexp.MustCompile(`([a-z_][a-z0-9_]*)="`)
	for _, line := range strings.Split(scrapeMetrics(t, n), "\n") {
		m := sample.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_sum"), "_count")
		if exported[name] == nil {
			exported[name] = map[string]bool{}
		}
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			exported[name][l[1]] = true
		}
	}
	defined := definedMetrics(t)

	metric := regexp.MustCompile(`gatehouse_[a-z_]+`)
	by := regexp.MustCompile(`by \(([^)]*)\)`)
	selector := regexp.MustCompile(`(gatehouse_[a-z_]+)\{([^}]*)\}`)
	queries := 0
	check := func(where, expr string) {
		queries++
		names := metric.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: %q names no Gatehouse metric", where, expr)
		}
		for _, name := range names {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			labels, isExported := exported[base]
			if !isExported && !slices.Contains(defined, base) {
				t.Errorf("%s: %s is not a metric Gatehouse has", where, name)
				continue
			}
			if !isExported {
				continue
			}
			var used []string
			for _, m := range by.FindAllStringSubmatch(expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					if l = strings.TrimSpace(l); l != "le" {
						used = append(used, l)
					}
				}
			}
			for _, m := range selector.FindAllStringSubmatch(expr, -1) {
				if m[1] == name {
					for _, l := range label.FindAllStringSubmatch(m[2], -1) {
						used = append(used, l[1])
					}
				}
			}
			for _, l := range used {
				if len(labels) > 0 && !labels[l] {
					t.Errorf("%s: %s has no label %q (it has %v)", where, base, l, labels)
				}
			}
		}
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if strings.HasPrefix(v.Query, "label_values(") {
			check("variable "+v.Name, v.Query)
		}
	}
	if queries < 15 {
		t.Errorf("%d queries checked; want the dashboard's every panel", queries)
	}
}

// definedMetrics lists the gatehouse_ metric names written in Gatehouse's code (not its tests).
func definedMetrics(t *testing.T) []string {
	t.Helper()
	var out []string
	lit := regexp.MustCompile(`"(gatehouse_[a-z_]+)"`)
	root := testfix.RepoRoot()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(data), -1) {
			out = append(out, m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
