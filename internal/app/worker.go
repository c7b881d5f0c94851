package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/runtimes"
	"gatehouse.dev/gatehouse/scheduler"
)

// Environment variables through which `up` hands bus credentials to its workers (never on the command
// line, where other users could read them).
const (
	envBusURL      = "GATEHOUSE_BUS_URL"
	envBusUser     = "GATEHOUSE_BUS_USER"
	envBusPassword = "GATEHOUSE_BUS_PASSWORD"
)

type workerOptions struct {
	id        string
	stack     string
	dataDir   string
	functions string
	slots     string
}

// runWorker is `gatehouse worker`: it serves invocations until SIGTERM or SIGINT, then drains.
func runWorker(opts workerOptions, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log = log.With("worker", opts.id)

	table, err := readFunctionTable(opts.functions)
	if err != nil {
		return fmt.Errorf("reading function table: %w", err)
	}
	var fns []scheduler.Function
	for _, e := range table.Functions {
		wasm, err := os.ReadFile(e.Wasm)
		if err != nil {
			return fmt.Errorf("function %s: %w", e.Name, err)
		}
		if sum := sha256.Sum256(wasm); hex.EncodeToString(sum[:]) != e.SHA256 {
			return fmt.Errorf("function %s: %s changed since it was checked (sha256 mismatch)", e.Name, e.Wasm)
		}
		fns = append(fns, scheduler.Function{Name: e.Name, Version: e.Version, Wasm: wasm, MemoryMB: e.MemoryMB, Timeout: e.timeout(), Env: e.Env, MinWarm: e.MinWarm,
			IdleTimeout: time.Duration(e.IdleTimeoutMs) * time.Millisecond})
	}
	cfg := scheduler.Config{Functions: fns, Logger: log}
	if opts.slots != "" {
		slots, err := scheduler.OpenSlots(opts.slots)
		if err != nil {
			return err
		}
		defer slots.Close()
		cfg.Slots = slots
	}
	sched, err := scheduler.New(cfg, runtimes.Config{CacheDir: filepath.Join(opts.dataDir, "compile")})
	if err != nil {
		return err
	}
	if err := sched.Load(ctx); err != nil {
		sched.Close(context.Background())
		return err
	}
	client, err := bus.Connect(bus.ClientConfig{
		URL:         os.Getenv(envBusURL),
		Credentials: bus.Credentials{User: os.Getenv(envBusUser), Password: os.Getenv(envBusPassword)},
		Stack:       opts.stack,
		Name:        "worker-" + opts.id,
		// The bus lives in the supervising process: when it is gone for good (5 s of failed reconnects),
		// so is this worker's purpose.
		OnClosed:      stop,
		MaxReconnects: 50,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	return sched.Run(ctx, client, opts.id)
}
