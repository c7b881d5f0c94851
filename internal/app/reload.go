package app

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/admin"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/project"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// reloadTimeout bounds a reload after its functions are built: deploying them, their loading on
// the workers, and the gateway applying the APIs.
const reloadTimeout = 2 * time.Minute

// Reload re-reads the stack file and applies what changed while the node runs: functions whose
// source or settings changed are built and deployed as at start, and the APIs the file defines are
// applied (see applyStackAPIs): created, updated where the file changed them, deleted where the file
// no longer has them. It answers once the workers have loaded the functions and this node's gateway
// serves the APIs. A stack file with a problem changes nothing. The stack's name, iam and usage
// plans are read at start: a change to them is reported as needing a restart.
func (n *Node) Reload(ctx context.Context) (adminapi.ReloadView, error) {
	return n.reload(ctx, n.opts.Stdout)
}

// reload is Reload, telling out about each function it builds and deploys.
func (n *Node) reload(ctx context.Context, out io.Writer) (adminapi.ReloadView, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	file := n.stack.File
	rep := adminapi.ReloadView{File: file}
	loaded, err := project.Load(file, project.Options{Parameters: n.opts.Parameters, Stage: n.opts.Stage})
	if err != nil {
		return rep, fmt.Errorf("%w: %w", admin.ErrReloadRefused, err)
	}
	stack := loaded.Stack
	if stack.Name != n.stack.Name {
		return rep, fmt.Errorf("%w: %s: the stack's name changed from %s to %s; a stack's name is its storage: stop the node and start it with the new file",
			admin.ErrReloadRefused, stackfile.Where(file, 0, 0, "name"), n.stack.Name, stack.Name)
	}
	bundles, err := n.prepareFunctions(ctx, stack, n.dataDir, out)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", admin.ErrReloadRefused, err)
	}
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	if rep.Functions, err = n.deployStackFunctions(ctx, stack, bundles, out); err != nil {
		return rep, err
	}
	if len(rep.Functions) > 0 {
		// The reload answers once the workers have loaded the new versions and the gateway routes
		// to them: the next request is served by the new code, warm.
		want := map[string]int{}
		for _, name := range rep.Functions {
			f, err := n.registry.Get(ctx, name)
			if err != nil {
				return rep, err
			}
			want[name] = f.LatestVersion
		}
		if err := n.applied(ctx, func(s *functions.Snapshot) bool {
			for name, v := range want {
				if _, ok := s.Version(name, v); !ok {
					return false
				}
			}
			return true
		}); err != nil {
			return rep, err
		}
	}
	apis, changed, err := applyStackAPIs(ctx, n.apiStore, stack, time.Now())
	rep.APIs = apis
	if err != nil {
		return rep, err
	}
	n.logReport(apis)
	for name, rev := range changed {
		if err := n.apis.wait(ctx, name, rev); err != nil {
			return rep, err
		}
	}
	if err := n.setSchedules(ctx, stack); err != nil {
		return rep, err
	}
	if !reflect.DeepEqual(stack.IAM, n.stack.IAM) {
		rep.Restart = append(rep.Restart, "iam")
	}
	if !reflect.DeepEqual(stack.UsagePlans, n.stack.UsagePlans) {
		rep.Restart = append(rep.Restart, "usagePlans")
	}
	// A domain's mappings, redirect and HSTS apply at once; its certificate, security policy and
	// trust store are read by the TLS listener at start.
	n.gw.SetDomains(n.domainsFor(stack))
	if !reflect.DeepEqual(tlsSettings(stack), tlsSettings(n.stack)) {
		rep.Restart = append(rep.Restart, "domains")
	}
	if len(rep.Restart) > 0 {
		n.log.Warn("stack file changes that take effect at the next start", "file", filepath.Base(file), "sections", rep.Restart)
	}
	n.latest.Store(stack)
	return rep, nil
}
